// Simulated world API (issue #5), inverse kinematics for scripted demonstrations:
//   ArmIK.solve(target:side:world:seed:pitchDown:) -> ArmIK.Solution
//     places the named arm's pinch point at `target` (world frame) with the gripper tilted towards the
//     table; damped least squares on a numerical Jacobian of ViperXKinematics (waist, shoulder, elbow,
//     wrist_angle; forearm_roll and wrist_rotate stay 0), inside the ViperX joint limits.
import Foundation

public enum ArmIK {
    public struct Solution: Sendable, Equatable {
        public var joints: ArmJoints
        /// Distance (m) left between the pinch point and the target.
        public var positionError: Double
    }

    /// ViperX 300 S joint limits (MJCF/URDF) for waist, shoulder, elbow, wrist_angle.
    public static let limits: [ClosedRange<Double>] = [-3.14158...3.14158, -1.85005...1.25664,
                                                        -1.76278...1.6057, -1.8675...2.23402]

    /// `pitchDown` is how strongly (0…1) the gripper's x axis is pulled towards straight down; it is a
    /// soft wish, the position is what must be met.
    public static func solve(target: Vec3, side: ArmSide, world: SimWorld, seed: ArmJoints = ArmJoints(),
                             pitchDown: Double = 0.3, iterations: Int = 300) -> Solution {
        let local = world.base(side).inverse.apply(target)
        var q = [seed.waist, seed.shoulder, seed.elbow, seed.wristAngle]
        // Start facing the target: the waist has a closed form, and starting there avoids the wrong basin.
        q[0] = atan2(local.y, local.x)
        if seed == ArmJoints() { q[1] = 0.3; q[2] = 0.3; q[3] = 0.8 }

        func residual(_ q: [Double]) -> [Double] {
            let f = ViperXKinematics.forward(ArmJoints(waist: q[0], shoulder: q[1], elbow: q[2], wristAngle: q[3]))
            let e = f.pinch - local
            // x axis of the gripper should have z = −1 (pointing down); weighted softly.
            return [e.x, e.y, e.z, pitchDown * 0.1 * (f.gripper.rotation.x.z + 1)]
        }

        var r = residual(q)
        let h = 1e-6
        for _ in 0..<iterations {
            // J (4 residuals × 4 joints), numerically.
            var jac = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 4)
            for j in 0..<4 {
                var qp = q
                qp[j] += h
                let rp = residual(qp)
                for i in 0..<4 { jac[i][j] = (rp[i] - r[i]) / h }
            }
            // Δq = −Jᵀ (J Jᵀ + λ²I)⁻¹ r
            let lambda2 = 1e-4
            var a = [[Double]](repeating: [Double](repeating: 0, count: 4), count: 4)
            for i in 0..<4 {
                for k in 0..<4 {
                    var s = 0.0
                    for j in 0..<4 { s += jac[i][j] * jac[k][j] }
                    a[i][k] = s + (i == k ? lambda2 : 0)
                }
            }
            guard let y = solve4(a, r) else { break }
            var next = q
            for j in 0..<4 {
                var s = 0.0
                for i in 0..<4 { s += jac[i][j] * y[i] }
                next[j] = min(max(q[j] - s, limits[j].lowerBound), limits[j].upperBound)
            }
            let rn = residual(next)
            q = next
            r = rn
            if (r[0] * r[0] + r[1] * r[1] + r[2] * r[2]).squareRoot() < 1e-5 && abs(r[3]) < 1e-7 { break }
        }
        let joints = ArmJoints(waist: q[0], shoulder: q[1], elbow: q[2], wristAngle: q[3])
        let pinch = ViperXKinematics.forward(joints).pinch
        return Solution(joints: joints, positionError: length(pinch - local))
    }

    /// Gaussian elimination with partial pivoting on a 4×4 system.
    private static func solve4(_ m: [[Double]], _ b: [Double]) -> [Double]? {
        var a = m
        var x = b
        let n = 4
        for c in 0..<n {
            var p = c
            for r in c + 1..<n where abs(a[r][c]) > abs(a[p][c]) { p = r }
            guard abs(a[p][c]) > 1e-15 else { return nil }
            a.swapAt(c, p)
            x.swapAt(c, p)
            for r in c + 1..<n {
                let f = a[r][c] / a[c][c]
                for k in c..<n { a[r][k] -= f * a[c][k] }
                x[r] -= f * x[c]
            }
        }
        for c in stride(from: n - 1, through: 0, by: -1) {
            var s = x[c]
            for k in c + 1..<n { s -= a[c][k] * x[k] }
            x[c] = s / a[c][c]
        }
        return x
    }
}
