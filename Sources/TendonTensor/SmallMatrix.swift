/// Row-major f32 matrix products for small per-head blocks (the gated delta rule's 64×64 chunks), through
/// OpenBLAS called single-threaded: callers parallelise over heads with their own pool.
///
/// API summary
/// - `SmallMatrix.useSingleThreadedBLAS()`: call once before a parallel region that uses the functions below.
/// - `SmallMatrix.gemm(transA:transB:m:n:k:alpha:a:lda:b:ldb:beta:c:ldc:)`: C = α·op(A)·op(B) + β·C,
///   op(A) [m, k], op(B) [k, n], C [m, n]; leading dimensions in floats.
/// - `SmallMatrix.gramLower(n:k:a:lda:c:ldc:)`: the lower triangle (diagonal included) of C = A·Aᵀ, A [n, k];
///   C's strictly upper part is left as it was.
/// - `SmallMatrix.solveUnitLower(n:columns:a:lda:b:ldb:)`: B ← L⁻¹·B for L unit lower triangular [n, n]
///   (A's strictly lower part; its diagonal and upper part are not read), B [n, columns].
import CBLAS

public enum SmallMatrix {
    /// Same policy as `Linear`: OpenBLAS's own threads would spin against the pool's on the same cores.
    public static func useSingleThreadedBLAS() {
        if openblas_get_num_threads() != 1 { openblas_set_num_threads(1) }
    }

    @inline(__always)
    public static func gemm(transA: Bool = false, transB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
                            a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int, beta: Float = 0,
                            c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard m > 0, n > 0 else { return }
        cblas_sgemm(CblasRowMajor, transA ? CblasTrans : CblasNoTrans, transB ? CblasTrans : CblasNoTrans,
                    Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
    }

    @inline(__always)
    public static func solveUnitLower(n: Int, columns: Int, a: UnsafePointer<Float>, lda: Int,
                                      b: UnsafeMutablePointer<Float>, ldb: Int) {
        guard n > 0, columns > 0 else { return }
        cblas_strsm(CblasRowMajor, CblasLeft, CblasLower, CblasNoTrans, CblasUnit, Int32(n), Int32(columns), 1,
                    a, Int32(lda), b, Int32(ldb))
    }

    @inline(__always)
    public static func gramLower(n: Int, k: Int, a: UnsafePointer<Float>, lda: Int, c: UnsafeMutablePointer<Float>, ldc: Int) {
        guard n > 0 else { return }
        cblas_ssyrk(CblasRowMajor, CblasLower, CblasNoTrans, Int32(n), Int32(k), 1, a, Int32(lda), 0, c, Int32(ldc))
    }
}
