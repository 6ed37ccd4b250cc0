/// Metadata keys of the on-board GGUF (DESIGN §3 "On-board file") that `tendon-train convert` writes and the
/// runtime reads. Files from the Hugging Face folder are carried verbatim as strings, so the runtime parses
/// exactly what `from_pretrained` would.
public enum TendonGGUFKeys {
    /// "tendon": the whole VLA (backbone + action expert); tensors keep their Hugging Face names.
    public static let architecture = "general.architecture"
    public static let architectureValue = "tendon"
    /// Folder name the file was converted from.
    public static let name = "general.name"
    /// uint32, bumped when the meaning of these keys changes.
    public static let formatVersion = "tendon.format_version"
    public static let formatVersionValue: UInt32 = 1
    /// The `--quant` the file was converted with (f32, f16, q8_0, q4_0, q4_k, q5_k).
    public static let quantization = "tendon.quantization"
    /// Present when `--tensor-type` rules were given: the rules, space-separated, in order (REGEX=TYPE).
    public static let tensorTypes = "tendon.quantization.tensor_types"
    /// Present when quantized weights were rounded by GPTQ: method, dampening, tensor count and the
    /// calibration observations' origin.
    public static let gptqCalibration = "tendon.quantization.gptq"
    /// config.json verbatim (model config, `action_expert`, `embodiments`, optional `prefix_template`).
    public static let configJSON = "tendon.config_json"
    /// The prefix template the file was converted with (config.json's `prefix_template`, else the default
    /// of the converting build), so a later default does not change what an old file's policy sees.
    public static let prefixTemplate = "tendon.prefix_template"
    /// tokenizer.json verbatim (llama.cpp's key for the same thing).
    public static let tokenizerJSON = "tokenizer.huggingface.json"
    /// Optional files, present when the folder has them.
    public static let tokenizerConfigJSON = "tendon.tokenizer_config_json"
    public static let preprocessorConfigJSON = "tendon.preprocessor_config_json"
    public static let generationConfigJSON = "tendon.generation_config_json"
    /// chat_template.jinja (transformers 5 saves the template there), under llama.cpp's key.
    public static let chatTemplate = "tokenizer.chat_template"
}
