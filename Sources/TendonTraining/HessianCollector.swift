import CBLAS
import Foundation
import Synchronization
import TendonModel
import TendonTensor

/// GPTQ's per-weight statistics: H = mean of xᵀx over every input row x a weight saw during calibration.
///
/// API summary
/// - `HessianCollector()`: a `LinearInputObserver`; install it with `Linear.observing(collector) { … }`
///   around model calls. Inputs of a weight the runtime stacked (the expert's q/k/v) count for each of its
///   checkpoint weights (`ActionExpert.sourceWeights(ofStacked:)`).
/// - `hessian(for:)` → (H [n·n] row-major, both triangles, mean over rows; rows seen), or nil if never seen.
/// - `columns(for:)` → n of a weight seen, without building H.
/// - `names`: checkpoint weight names seen.
///
/// Sums are kept in double (dsyrk on the rows widened to double): calibration sees thousands of rows per
/// weight and H's small eigenvalues are what GPTQ's error propagation leans on.
public final class HessianCollector: LinearInputObserver, Sendable {
    private final class Sum: @unchecked Sendable {
        let n: Int
        var rows = 0
        let lower: UnsafeMutablePointer<Double>  // lower triangle of Σ xᵀx, row-major
        init(n: Int) {
            self.n = n
            lower = .allocate(capacity: n * n)
            lower.initialize(repeating: 0, count: n * n)
        }
        deinit { lower.deallocate() }
    }

    private let sums = Mutex<[String: Sum]>([:])

    public init() {}

    public func observe(weight: Tensor, input: UnsafePointer<Float>, rows: Int) {
        guard weight.rank == 2, rows > 0 else { return }
        let n = weight.shape[1]
        let names = ActionExpert.sourceWeights(ofStacked: weight.name) ?? [weight.name]
        let wide = UnsafeMutablePointer<Double>.allocate(capacity: rows * n)
        defer { wide.deallocate() }
        for i in 0..<(rows * n) { wide[i] = Double(input[i]) }
        sums.withLock { table in
            for name in names {
                let sum: Sum
                if let existing = table[name], existing.n == n { sum = existing } else { sum = Sum(n: n); table[name] = sum }
                // lower += xᵀx with x [rows, n] row-major.
                cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, Int32(n), Int32(rows), 1, wide, Int32(n), 1,
                            sum.lower, Int32(n))
                sum.rows += rows
            }
        }
    }

    public var names: [String] { sums.withLock { Array($0.keys).sorted() } }

    public func columns(for name: String) -> Int? {
        sums.withLock { table in table[name].flatMap { $0.rows > 0 ? $0.n : nil } }
    }

    public func hessian(for name: String) -> (matrix: [Double], rows: Int)? {
        sums.withLock { table -> (matrix: [Double], rows: Int)? in
            guard let sum = table[name], sum.rows > 0 else { return nil }
            let n = sum.n, scale = 1 / Double(sum.rows)
            var h = [Double](repeating: 0, count: n * n)
            for i in 0..<n {
                for j in 0...i {
                    let v = sum.lower[i * n + j] * scale
                    h[i * n + j] = v
                    h[j * n + i] = v
                }
            }
            return (h, sum.rows)
        }
    }
}
