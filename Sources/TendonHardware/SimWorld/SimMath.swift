import Foundation

// Small rigid-body math for the simulated world: 3×3 rotations (columns = the frame's axes in the
// parent frame) and poses. Doubles throughout; the world is a few dozen shapes.
public typealias Vec3 = SIMD3<Double>

@inline(__always) func dot(_ a: Vec3, _ b: Vec3) -> Double { (a * b).sum() }
@inline(__always) func cross(_ a: Vec3, _ b: Vec3) -> Vec3 {
    Vec3(a.y * b.z - a.z * b.y, a.z * b.x - a.x * b.z, a.x * b.y - a.y * b.x)
}
@inline(__always) func length(_ a: Vec3) -> Double { dot(a, a).squareRoot() }
@inline(__always) func normalized(_ a: Vec3) -> Vec3 { let l = length(a); return l > 0 ? a / l : a }

public struct Rotation3: Sendable, Equatable {
    public var x: Vec3
    public var y: Vec3
    public var z: Vec3

    public static let identity = Rotation3(x: Vec3(1, 0, 0), y: Vec3(0, 1, 0), z: Vec3(0, 0, 1))

    public init(x: Vec3, y: Vec3, z: Vec3) {
        self.x = x
        self.y = y
        self.z = z
    }

    public static func aboutX(_ a: Double) -> Rotation3 {
        let c = _cos(a), s = _sin(a)
        return Rotation3(x: Vec3(1, 0, 0), y: Vec3(0, c, s), z: Vec3(0, -s, c))
    }
    public static func aboutY(_ a: Double) -> Rotation3 {
        let c = _cos(a), s = _sin(a)
        return Rotation3(x: Vec3(c, 0, -s), y: Vec3(0, 1, 0), z: Vec3(s, 0, c))
    }
    public static func aboutZ(_ a: Double) -> Rotation3 {
        let c = _cos(a), s = _sin(a)
        return Rotation3(x: Vec3(c, s, 0), y: Vec3(-s, c, 0), z: Vec3(0, 0, 1))
    }

    public func apply(_ v: Vec3) -> Vec3 { x * v.x + y * v.y + z * v.z }
    public static func * (a: Rotation3, b: Rotation3) -> Rotation3 {
        Rotation3(x: a.apply(b.x), y: a.apply(b.y), z: a.apply(b.z))
    }
}

/// A frame: where its origin is and how its axes point, in the parent frame.
public struct Pose: Sendable, Equatable {
    public var rotation: Rotation3
    public var position: Vec3

    public static let identity = Pose(rotation: .identity, position: .zero)

    public init(rotation: Rotation3, position: Vec3) {
        self.rotation = rotation
        self.position = position
    }

    public func apply(_ p: Vec3) -> Vec3 { rotation.apply(p) + position }
    public static func * (a: Pose, b: Pose) -> Pose {
        Pose(rotation: a.rotation * b.rotation, position: a.apply(b.position))
    }
    public func translated(_ t: Vec3) -> Pose { Pose(rotation: rotation, position: apply(t)) }
    public func rotated(_ r: Rotation3) -> Pose { Pose(rotation: rotation * r, position: position) }
}

@inline(__always) func _sin(_ x: Double) -> Double { sin(x) }
@inline(__always) func _cos(_ x: Double) -> Double { cos(x) }

extension Pose {
    public var inverse: Pose {
        let r = rotation
        // Transpose of an orthonormal matrix.
        let t = Rotation3(x: Vec3(r.x.x, r.y.x, r.z.x), y: Vec3(r.x.y, r.y.y, r.z.y), z: Vec3(r.x.z, r.y.z, r.z.z))
        return Pose(rotation: t, position: -t.apply(position))
    }
}
