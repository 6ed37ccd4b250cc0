/// `tendon bench gemm`: throughput of TendonTensor's linear kernels next to OpenBLAS and the CPU's peak.
import ArgumentParser
import Foundation
import TendonTensor

struct GemmBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gemm",
        abstract: "GFLOP/s of y = x·Wᵀ: f32 (ours vs OpenBLAS sgemm), f16, the int8 paths (Q8_0, Q4_K, Q5_K) and tiled sgemm.",
        discussion: """
        Shapes T × (in → out) for T in --tokens and the 1024→1024 and 1024→3072 projections, with 1 and 2 \
        threads (our pool; OpenBLAS via openblas_set_num_threads). Quantized rows count 2·T·in·out integer \
        ops including the activation quantization. Peak = cores × GHz (from /proc/cpuinfo) × f32 FLOP/cycle \
        (two FMA pipes: 32 with AVX2, 64 with AVX-512) and × int8 ops/cycle (128 with 256-bit, 256 with \
        512-bit VNNI; on the VNNI path Linear runs Q8_0/Q4_0/Q4_K/Q5_K through the packed 512-bit int8 GEMM). GHz is the \
        nominal clock from /proc/cpuinfo, so boost clocks can put a row above 100 %. OpenBLAS 0.3.21 does not \
        recognise this CPU and uses a generic kernel unless OPENBLAS_CORETYPE is set; --openblas-coretype \
        re-executes the benchmark with it set (tests never set it). "f32 openblas" is OpenBLAS with its own \
        threads; Linear (ours, tiles+sgemm) calls it single-threaded on per-thread slices of our pool.
        """)

    @Option(help: "Token counts T.") var tokens: [Int] = [1, 64, 512]
    @Option(help: "Seconds to spend per measurement.") var seconds: Double = 0.3
    @Option(help: "Re-run with OPENBLAS_CORETYPE set to this (e.g. Haswell, SkylakeX, Zen).") var openblasCoretype: String?
    @Flag(help: "Print JSON.") var json = false

    struct Row: Codable {
        var kernel: String
        var tokens: Int
        var inFeatures: Int
        var outFeatures: Int
        var threads: Int
        var milliseconds: Double
        var gops: Double
        var percentOfPeak: Double
    }

    struct Report: Codable {
        var cpu: String
        var cores: Int
        var gigahertz: Double
        var peakF32GFLOPs: Double
        var peakInt8GOPs: Double
        var kernelPath: String
        var openblasCore: String
        var openblasCoretypeEnv: String?
        var poolRoundTripMicros: Double = 0
        var rows: [Row]
    }

    func run() throws {
        if let wanted = openblasCoretype, ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"] != wanted {
            // OpenBLAS reads the variable in its load-time constructor, so it must be set before exec.
            setenv("OPENBLAS_CORETYPE", wanted, 1)
            let args = CommandLine.arguments.map { strdup($0) } + [nil]
            execv("/proc/self/exe", args)
            throw ValidationError("could not re-execute with OPENBLAS_CORETYPE=\(wanted): errno \(errno)")
        }
        let (cpu, ghz) = Self.cpuInfo()
        let cores = ProcessInfo.processInfo.activeProcessorCount
        // Two FMA pipes: 2×8×2 f32 FLOP/cycle with AVX2, 2×16×2 with AVX-512; int8 VNNI: 2 pipes × (lanes×4 MACs×2).
        let avx512 = KernelPath.available.contains(.avx512vnni)
        var report = Report(cpu: cpu, cores: cores, gigahertz: ghz, peakF32GFLOPs: Double(cores) * ghz * (avx512 ? 64 : 32),
                            peakInt8GOPs: Double(cores) * ghz * (avx512 ? 256 : 128), kernelPath: KernelPath.best.description,
                            openblasCore: BLASInfo.coreName,
                            openblasCoretypeEnv: ProcessInfo.processInfo.environment["OPENBLAS_CORETYPE"], rows: [])
        if !json {
            print("CPU \(cpu), \(cores) cores at \(String(format: "%.2f", ghz)) GHz; peak f32 \(Int(report.peakF32GFLOPs)) GFLOP/s, int8 \(Int(report.peakInt8GOPs)) GOP/s (all cores)")
            print("our kernels: \(KernelPath.best); OpenBLAS core \(report.openblasCore)"
                  + (report.openblasCoretypeEnv.map { " (OPENBLAS_CORETYPE=\($0) set by this benchmark or its caller)" } ?? " (OPENBLAS_CORETYPE unset)"))
            print("load average \((try? String(contentsOfFile: "/proc/loadavg", encoding: .utf8))?.split(separator: " ").prefix(3).joined(separator: " ") ?? "?") (other work on these cores lowers the 2-thread rows)")
            print("kernel                T    in→out     threads      ms     GOP/s  %peak(threads used)")
        }
        let pool2 = ThreadPool(threads: 2)
        let roundTrip = try Self.time(seconds) { for _ in 0..<100 { pool2.parallelFor(2) { _ in } } } * 10
        report.poolRoundTripMicros = roundTrip
        if !json { print(String(format: "ThreadPool(threads: 2) empty parallelFor round trip: %.2f µs", roundTrip)) }
        var rng = SystemRandomNumberGenerator()
        for (inF, outF) in [(1024, 1024), (1024, 3072)] {
            let w = Tensor((0..<(inF * outF)).map { _ in Float.random(in: -0.05...0.05, using: &rng) }, shape: [outF, inF])
            let weights: [(String, Tensor)] = [("f32 ours", w), ("f16 ours", try w.converted(to: .f16)),
                                               ("q8_0 wide", try w.converted(to: .q8_0)), ("q4_K int8", try w.converted(to: .q4_K)),
                                               ("q5_K int8", try w.converted(to: .q5_K))]
            for T in tokens {
                let x = Tensor((0..<(T * inF)).map { _ in Float.random(in: -1...1, using: &rng) }, shape: [T, inF])
                let y = Tensor(zeros: [T, outF])
                let xp = UnsafePointer(x.rawPointer.assumingMemoryBound(to: Float.self))
                let yp = y.rawPointer.assumingMemoryBound(to: Float.self)
                for threads in [1, 2] {
                    let pool = threads > 1 ? ThreadPool(threads: threads) : nil
                    for (name, weight) in weights {
                        let ms = try Self.time(seconds) {
                            try Linear.forward(xp, rows: T, weight: weight, bias: nil, into: yp, pool: pool, blas: .never)
                        }
                        report.rows.append(row(name, T, inF, outF, threads, ms, peak: (name.contains("int8") || name.contains("wide")) ? report.peakInt8GOPs : report.peakF32GFLOPs, cores: cores))
                        if !json { print(Self.format(report.rows.last!)) }
                        // The alternative Linear.forward picks from Linear.tiledMinRows(for:path:) rows:
                        // weights widened/dequantized in tiles for sgemm.
                        // Q8_0's packed GEMM takes 15-bit activations (two vpdpbusd per weight vector); the
                        // int8-activation variant it replaced, for the ratio.
                        if weight.dtype == .q8_0, Linear.usesPackedGEMM(.q8_0, rows: T, path: .best),
                           let packed = PackedWeight.cached(for: weight) {
                            let ms = try Self.time(seconds) {
                                try packed.multiply(xp, rows: T, into: yp, pool: pool, activations: .int8)
                            }
                            report.rows.append(row("q8_0 int8-act", T, inF, outF, threads, ms, peak: report.peakInt8GOPs, cores: cores))
                            if !json { print(Self.format(report.rows.last!)) }
                        }
                        if weight.dtype != .f32 && T > 1 {
                            let ms = try Self.time(seconds) {
                                try Linear.forward(xp, rows: T, weight: weight, bias: nil, into: yp, pool: pool, blas: .always)
                            }
                            let label = String(name.prefix(while: { $0 != " " })) + " tiles+sgemm"
                            report.rows.append(row(label, T, inF, outF, threads, ms, peak: report.peakF32GFLOPs, cores: cores))
                            if !json { print(Self.format(report.rows.last!)) }
                        }
                    }
                    BLASInfo.setThreads(threads)
                    let wp = UnsafePointer(w.rawPointer.assumingMemoryBound(to: Float.self))
                    let ms = try Self.time(seconds) { BLASInfo.sgemmNT(m: T, n: outF, k: inF, a: xp, b: wp, c: yp) }
                    report.rows.append(row("f32 openblas", T, inF, outF, threads, ms, peak: report.peakF32GFLOPs, cores: cores))
                    if !json { print(Self.format(report.rows.last!)) }
                }
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        }
    }

    private func row(_ kernel: String, _ T: Int, _ inF: Int, _ outF: Int, _ threads: Int, _ ms: Double,
                     peak: Double, cores: Int) -> Row {
        let gops = 2 * Double(T * inF * outF) / (ms * 1e6)
        // Peak for the threads used, not the whole machine.
        let threadPeak = peak * Double(min(threads, cores)) / Double(cores)
        return Row(kernel: kernel, tokens: T, inFeatures: inF, outFeatures: outF, threads: threads, milliseconds: ms,
                   gops: gops, percentOfPeak: 100 * gops / threadPeak)
    }

    static func format(_ r: Row) -> String {
        String(format: "%-18@ %4d  %4d→%-4d  %7d  %8.3f  %8.1f  %5.1f", r.kernel as NSString, r.tokens, r.inFeatures,
               r.outFeatures, r.threads, r.milliseconds, r.gops, r.percentOfPeak)
    }

    /// Median milliseconds of `body` over ~`seconds` (after one warm-up call).
    static func time(_ seconds: Double, _ body: () throws -> Void) throws -> Double {
        try body()
        var samples: [Double] = []
        let start = DispatchTime.now().uptimeNanoseconds
        while samples.count < 3 || (Double(DispatchTime.now().uptimeNanoseconds - start) < seconds * 1e9 && samples.count < 10_000) {
            let t0 = DispatchTime.now().uptimeNanoseconds
            try body()
            samples.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e6)
        }
        samples.sort()
        return samples[samples.count / 2]
    }

    /// Model name and nominal frequency (GHz) from /proc/cpuinfo ("cpu MHz"; the model string's "@ x GHz" if present).
    static func cpuInfo() -> (String, Double) {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return ("unknown", 0) }
        var model = "unknown", mhz = 0.0
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
            guard parts.count == 2 else { continue }
            if parts[0] == "model name", model == "unknown" { model = parts[1] }
            if parts[0] == "cpu MHz", mhz == 0, let v = Double(parts[1]) { mhz = v }
        }
        if let at = model.range(of: "@ "), let ghz = Double(model[at.upperBound...].replacingOccurrences(of: "GHz", with: "").trimmingCharacters(in: .whitespaces)) {
            return (model, ghz)
        }
        return (model, mhz / 1000)
    }
}
