// Simulated world API (issue #5), a small software renderer (no GPU):
//   SimRenderer(width:height:)                      preallocates its depth buffer
//   render(task:joints:view:into:)                  table, the three blocks and both arms (boxes along
//       the FK links, fingers from the gripper joint) seen from `view`, RGB8 into the caller's buffer
//       (width·height·3 bytes); no allocation per frame
//   SimRenderer.boxes(task:joints:)                 the scene as oriented boxes (for tests and tools)
// A z-buffered triangle rasterizer: each box is 12 triangles, clipped at the near plane, depth
// interpolated as 1/z (perspective-correct), flat Lambert shading from one fixed light.
import Foundation

public struct SimBox: Sendable, Equatable {
    public var pose: Pose
    public var halfExtent: Vec3
    public var color: (UInt8, UInt8, UInt8)

    public init(pose: Pose, halfExtent: Vec3, color: (UInt8, UInt8, UInt8)) {
        self.pose = pose
        self.halfExtent = halfExtent
        self.color = color
    }

    /// A box of square cross-section `thickness` from a to b; `side` fixes the roll about the segment.
    public init(from a: Vec3, to b: Vec3, thickness: Double, side: Vec3, color: (UInt8, UInt8, UInt8)) {
        let u = normalized(b - a)
        var v = side - u * dot(side, u)
        if length(v) < 1e-9 { v = cross(u, Vec3(0, 0, 1)) }
        if length(v) < 1e-9 { v = cross(u, Vec3(0, 1, 0)) }
        v = normalized(v)
        let w = cross(u, v)
        pose = Pose(rotation: Rotation3(x: u, y: v, z: w), position: (a + b) / 2)
        halfExtent = Vec3(length(b - a) / 2, thickness / 2, thickness / 2)
        self.color = color
    }

    public static func == (l: SimBox, r: SimBox) -> Bool {
        l.pose == r.pose && l.halfExtent == r.halfExtent && l.color == r.color
    }
}

public final class SimRenderer {
    public let width: Int
    public let height: Int
    private var depth: [Float]
    public static let background: (UInt8, UInt8, UInt8) = (200, 205, 212)
    private static let light = normalized(Vec3(0.3, -0.5, 1.0))
    private static let near = 0.01

    public init(width: Int, height: Int) {
        self.width = max(1, width)
        self.height = max(1, height)
        depth = [Float](repeating: 0, count: self.width * self.height)
    }

    public static let tableColor: (UInt8, UInt8, UInt8) = (150, 115, 80)
    public static let armColor: (UInt8, UInt8, UInt8) = (45, 45, 50)
    public static let fingerColor: (UInt8, UInt8, UInt8) = (95, 95, 105)
    public static let floorColor: (UInt8, UInt8, UInt8) = (120, 120, 125)

    /// Everything in the world as boxes, in world coordinates.
    public static func boxes(task: SimTask, joints: [Double]) -> [SimBox] {
        let world = task.world
        var out: [SimBox] = []
        out.reserveCapacity(40)
        let t = world.tableHalfExtent
        out.append(SimBox(pose: Pose(rotation: .identity, position: Vec3(0, 0, -0.76)),
                          halfExtent: Vec3(3, 3, 0.005), color: floorColor))
        out.append(SimBox(pose: Pose(rotation: .identity, position: Vec3(0, 0, -world.tableThickness / 2)),
                          halfExtent: Vec3(t.x, t.y, world.tableThickness / 2), color: tableColor))
        for b in task.blocks {
            out.append(SimBox(pose: Pose(rotation: .identity, position: b.center),
                              halfExtent: Vec3(repeating: b.halfSize), color: b.color.rgb))
        }
        for side in ArmSide.allCases {
            let base = world.base(side)
            let f = world.armFrames(side, joints: joints)
            let lateral = f.gripper.rotation.y
            out.append(SimBox(pose: base.translated(Vec3(0, 0, 0.04)), halfExtent: Vec3(0.06, 0.06, 0.04),
                              color: armColor))
            let shoulderBase = base.apply(Vec3(0, 0, 0.079))
            out.append(SimBox(from: shoulderBase, to: f.shoulder.position, thickness: 0.07, side: lateral, color: armColor))
            out.append(SimBox(from: f.shoulder.position, to: f.elbow.position, thickness: 0.045,
                              side: f.shoulder.rotation.y, color: armColor))
            out.append(SimBox(from: f.elbow.position, to: f.wrist.position, thickness: 0.04,
                              side: f.elbow.rotation.y, color: armColor))
            out.append(SimBox(from: f.wrist.position, to: f.gripper.apply(Vec3(0.06, 0, 0)), thickness: 0.045,
                              side: lateral, color: armColor))
            // Fingers: thin plates from the gripper body to just past the pinch point, at ±d.
            let d = length(f.leftFingertip - f.pinch)
            for s in [1.0, -1.0] {
                out.append(SimBox(from: f.gripper.apply(Vec3(0.06, s * d, 0)),
                                  to: f.gripper.apply(Vec3(ViperXKinematics.gripperToPinch + 0.03, s * d, 0)),
                                  thickness: 0.012, side: lateral, color: fingerColor))
            }
        }
        return out
    }

    /// Renders into `pixels` (at least width·height·3 bytes; shorter buffers are left untouched).
    public func render(task: SimTask, joints: [Double], view: SimCameraView, into pixels: UnsafeMutableRawBufferPointer) {
        render(boxes: Self.boxes(task: task, joints: joints), view: view, into: pixels)
    }

    public func render(boxes: [SimBox], view: SimCameraView, into pixels: UnsafeMutableRawBufferPointer) {
        guard pixels.count >= width * height * 3, let out = pixels.baseAddress?.assumingMemoryBound(to: UInt8.self)
        else { return }
        let bg = Self.background
        for i in 0..<(width * height) {
            out[3 * i] = bg.0
            out[3 * i + 1] = bg.1
            out[3 * i + 2] = bg.2
        }
        depth.withUnsafeMutableBufferPointer { z in
            for i in 0..<z.count { z[i] = 0 }  // stores 1/depth: 0 is infinitely far
            for box in boxes { drawBox(box, view: view, out: out, z: z) }
        }
    }

    // Faces as (normal axis, sign) with their 4 corners in the box's unit cube.
    private static let faces: [(Int, Double)] = [(0, 1), (0, -1), (1, 1), (1, -1), (2, 1), (2, -1)]

    private func drawBox(_ box: SimBox, view: SimCameraView, out: UnsafeMutablePointer<UInt8>,
                         z: UnsafeMutableBufferPointer<Float>) {
        let r = box.pose.rotation
        let axes = [r.x, r.y, r.z]
        let e = box.halfExtent
        let ext = [e.x, e.y, e.z]
        for (axis, sign) in Self.faces {
            let n = axes[axis] * sign
            let faceCenter = box.pose.position + n * ext[axis]
            // Back faces never show on a closed box.
            guard dot(n, view.position - faceCenter) > 0 else { continue }
            let a1 = (axis + 1) % 3, a2 = (axis + 2) % 3
            let u = axes[a1] * ext[a1], v = axes[a2] * ext[a2]
            let c0 = faceCenter - u - v, c1 = faceCenter + u - v, c2 = faceCenter + u + v, c3 = faceCenter - u + v
            let shade = 0.45 + 0.55 * max(0, dot(n, Self.light))
            let color = (UInt8(min(255, Double(box.color.0) * shade)), UInt8(min(255, Double(box.color.1) * shade)),
                         UInt8(min(255, Double(box.color.2) * shade)))
            drawTriangle(view.toCamera(c0), view.toCamera(c1), view.toCamera(c2), color: color, view: view, out: out, z: z)
            drawTriangle(view.toCamera(c0), view.toCamera(c2), view.toCamera(c3), color: color, view: view, out: out, z: z)
        }
    }

    /// Clips a camera-space triangle at the near plane (0, 1 or 2 triangles result) and fills it.
    private func drawTriangle(_ a: Vec3, _ b: Vec3, _ c: Vec3, color: (UInt8, UInt8, UInt8), view: SimCameraView,
                              out: UnsafeMutablePointer<UInt8>, z: UnsafeMutableBufferPointer<Float>) {
        let near = Self.near
        let inside = [a.z >= near, b.z >= near, c.z >= near]
        let count = inside.filter { $0 }.count
        if count == 3 { fill(a, b, c, color, view, out, z); return }
        if count == 0 { return }
        func cut(_ p: Vec3, _ q: Vec3) -> Vec3 { let t = (near - p.z) / (q.z - p.z); return p + (q - p) * t }
        let v = [a, b, c]
        if count == 1 {
            let i = inside.firstIndex(of: true)!
            let p = v[i], q = v[(i + 1) % 3], r = v[(i + 2) % 3]
            fill(p, cut(p, q), cut(p, r), color, view, out, z)
        } else {
            let o = inside.firstIndex(of: false)!
            let p = v[(o + 1) % 3], q = v[(o + 2) % 3], x = v[o]
            let pq = cut(q, x), px = cut(p, x)
            fill(p, q, pq, color, view, out, z)
            fill(p, pq, px, color, view, out, z)
        }
    }

    private func fill(_ a: Vec3, _ b: Vec3, _ c: Vec3, _ color: (UInt8, UInt8, UInt8), _ view: SimCameraView,
                      _ out: UnsafeMutablePointer<UInt8>, _ z: UnsafeMutableBufferPointer<Float>) {
        let f = view.focal(height: height)
        let cx = Double(width) / 2, cy = Double(height) / 2
        let ax = cx + f * a.x / a.z, ay = cy + f * a.y / a.z
        let bx = cx + f * b.x / b.z, by = cy + f * b.y / b.z
        let qx = cx + f * c.x / c.z, qy = cy + f * c.y / c.z
        let area = (bx - ax) * (qy - ay) - (by - ay) * (qx - ax)
        guard abs(area) > 1e-12 else { return }
        let wa = 1 / a.z, wb = 1 / b.z, wc = 1 / c.z
        let x0 = max(0, Int(min(ax, bx, qx).rounded(.down))), x1 = min(width - 1, Int(max(ax, bx, qx).rounded(.up)))
        let y0 = max(0, Int(min(ay, by, qy).rounded(.down))), y1 = min(height - 1, Int(max(ay, by, qy).rounded(.up)))
        guard x0 <= x1, y0 <= y1 else { return }
        let inv = 1 / area
        for y in y0...y1 {
            let py = Double(y) + 0.5
            for x in x0...x1 {
                let px = Double(x) + 0.5
                let l0 = ((bx - px) * (qy - py) - (by - py) * (qx - px)) * inv
                let l1 = ((qx - px) * (ay - py) - (qy - py) * (ax - px)) * inv
                let l2 = 1 - l0 - l1
                guard l0 >= 0, l1 >= 0, l2 >= 0 else { continue }
                let w = Float(l0 * wa + l1 * wb + l2 * wc)
                let i = y * width + x
                guard w > z[i] else { continue }
                z[i] = w
                out[3 * i] = color.0
                out[3 * i + 1] = color.1
                out[3 * i + 2] = color.2
            }
        }
    }
}
