// The text the backbone sees (DESIGN §3 "Prefix"): the paper's embodiment prompt inside a chat-style prefix
// with one vision block per camera. Tools/reference/qwen_vla.py builds the same strings.

/// The embodiment prompt, verbatim from the paper.
public enum EmbodimentPrompt {
    /// `{images}`: the camera blocks in config order, no separator; `{prompt}`: the embodiment prompt.
    public static let defaultPrefixTemplate = "<|im_start|>user\n{images}{prompt}<|im_end|>\n<|im_start|>assistant\n"

    /// "The robot is {robot_tag} with {single arm|dual arms}[, waist][, and mobile base]. The control frequency
    /// is {fps} Hz. Please predict the next {chunk_size} control actions to execute the following task:
    /// {instruction}." — one trailing "." of the instruction is dropped so the sentence ends with one.
    public static func render(_ e: Embodiment, instruction: String) -> String {
        var task = instruction
        if task.unicodeScalars.last == "." { task.unicodeScalars.removeLast() }
        let arms = e.arms == .single ? "single arm" : "dual arms"
        return "The robot is \(e.robotTag) with \(arms)\(e.waist ? ", waist" : "")\(e.mobileBase ? ", and mobile base" : ""). "
            + "The control frequency is \(e.fps) Hz. Please predict the next \(e.chunkSize) control actions to execute "
            + "the following task: \(task)."
    }

    /// One camera's block: `<|vision_start|>` + `imageTokens` × `<|image_pad|>` + `<|vision_end|>`.
    public static func cameraBlock(imageTokens: Int) -> String {
        "<|vision_start|>" + String(repeating: "<|image_pad|>", count: imageTokens) + "<|vision_end|>"
    }

    /// One left-to-right pass over `template`: each `{images}` and `{prompt}` is replaced, nothing else is
    /// (so braces in the instruction are kept as they are).
    public static func prefix(template: String = defaultPrefixTemplate, imageTokens: [Int], prompt: String) -> String {
        let images = imageTokens.map { cameraBlock(imageTokens: $0) }.joined()
        var out = ""
        var rest = Substring(template)
        while let brace = rest.firstIndex(of: "{") {
            out += rest[..<brace]
            let tail = rest[brace...]
            if tail.hasPrefix("{images}") {
                out += images
                rest = tail.dropFirst(8)
            } else if tail.hasPrefix("{prompt}") {
                out += prompt
                rest = tail.dropFirst(8)
            } else {
                out += "{"
                rest = tail.dropFirst()
            }
        }
        return out + rest
    }
}
