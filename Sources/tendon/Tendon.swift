import ArgumentParser

@main
struct Tendon: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tendon",
        abstract: "Run a VLA policy on an ALOHA-class dual-arm robot.")
}
