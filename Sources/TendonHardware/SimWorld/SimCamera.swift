// Simulated world API (issue #5), a camera of the simulated world:
//   SimCamera(name:task:width:height:fps:joints:)   name ∈ SimWorld.cameraNames; `joints` returns the
//       14-D FOLLOWER joint vector (e.g. SimulatedJointReader.read), called once per frame
//   start()/stop()          a capture thread renders at `fps` into a FrameRing (like a real camera)
//   renderOnce() -> CameraFrameHeader   render and publish now, on the caller's thread (deterministic
//       recording and tests); do not mix with a running capture thread
//   copyLatestFrame(into:)  newest frame, no allocation (CameraSource)
//   SimCamera.cameras(for:task:width:height:fps:joints:) -> [SimCamera]   one per camera of the robot
//       config (its `cameras:` order; SimWorld.cameraNames when it has none), at the simulated size
import Foundation
import Synchronization

public final class SimCamera: CameraSource, @unchecked Sendable {
    public let name: String
    public let width: Int
    public let height: Int
    public let fps: Double
    public let task: SimTask
    private let joints: @Sendable () -> [Double]
    private let ring: FrameRing
    // The renderer and scratch image belong to whoever renders (capture thread or renderOnce); the lock
    // only keeps the two apart. Readers never take it.
    private let renderLock = NSLock()
    private let renderer: SimRenderer
    private let scratch: UnsafeMutableRawBufferPointer
    private var sequence: UInt64 = 0
    private let running = Atomic<Bool>(false)
    private let finished = DispatchSemaphore(value: 0)

    public init(name: String, task: SimTask, width: Int = 320, height: Int = 240, fps: Double = 30,
                joints: @escaping @Sendable () -> [Double]) throws(CameraError) {
        guard SimWorld.cameraNames.contains(name) else { throw .unknownCamera(name: name, known: SimWorld.cameraNames) }
        self.name = name
        self.task = task
        self.width = width
        self.height = height
        self.fps = fps
        self.joints = joints
        ring = FrameRing(maxWidth: width, maxHeight: height)
        renderer = SimRenderer(width: width, height: height)
        scratch = .allocate(byteCount: width * height * 3, alignment: 16)
    }

    deinit {
        stop()
        scratch.deallocate()
    }

    @discardableResult
    public func renderOnce() -> CameraFrameHeader {
        renderLock.lock()
        defer { renderLock.unlock() }
        let q = joints()
        let view = task.world.cameraView(named: name, joints: q)
            ?? SimCameraView(position: Vec3(0, -1, 1), lookAt: .zero, up: Vec3(0, 0, 1), verticalFOV: 1)
        let taken = MonotonicClock.nowNanos()
        renderer.render(task: task, joints: q, view: view, into: scratch)
        let header = CameraFrameHeader(width: width, height: height, sequence: sequence, timestampNanos: taken,
                                       driverTimestampNanos: taken)
        sequence += 1
        ring.publish(header: header, pixels: UnsafeRawBufferPointer(scratch))
        return header
    }

    public func start() throws(CameraError) {
        guard running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw .alreadyStarted(name: name)
        }
        let period = UInt64(1e9 / max(fps, 0.1))
        let thread = Thread { [self] in
            var next = MonotonicClock.nowNanos()
            while running.load(ordering: .acquiring) {
                renderOnce()
                next += period
                let now = MonotonicClock.nowNanos()
                if next > now { usleep(UInt32((next - now) / 1000)) } else { next = now }
            }
            finished.signal()
        }
        thread.name = "sim-camera-\(name)"
        thread.start()
    }

    public func stop() {
        if running.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged {
            finished.wait()
        }
    }

    /// The robot's cameras in config order, rendered at `width`×`height` (the simulated cameras need
    /// not match the real ones' resolution). Throws for a camera name the simulated world has no view for.
    public static func cameras(for robot: RobotConfig, task: SimTask, width: Int = 320, height: Int = 240,
                               fps: Double? = nil,
                               joints: @escaping @Sendable () -> [Double]) throws(CameraError) -> [SimCamera] {
        let configured = robot.cameras
        let names = configured.isEmpty ? SimWorld.cameraNames : configured.map(\.name)
        var out: [SimCamera] = []
        for name in names {
            let rate = fps ?? configured.first { $0.name == name }.map { Double($0.fps) } ?? 30
            out.append(try SimCamera(name: name, task: task, width: width, height: height, fps: rate, joints: joints))
        }
        return out
    }

    public func copyLatestFrame(into buffer: UnsafeMutableRawBufferPointer) -> CameraFrameHeader? {
        ring.copyLatest(into: buffer)
    }
}
