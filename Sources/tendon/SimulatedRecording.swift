import TendonService

/// What `--sim` adds to a recording: simulated cameras and the sim task's demonstrations (from the
/// simulated world), attached once the simulator runs.
enum SimulatedRecording {
    static func attach(to runner: RecordRunner) {}
}
