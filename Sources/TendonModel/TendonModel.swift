import TendonTensor
/// Qwen-VLA model code (DESIGN §3): tokenizer, Qwen3.5 backbone, action expert, checkpoint loading.
public enum TendonModelInfo { public static let designSection = "§3" }
