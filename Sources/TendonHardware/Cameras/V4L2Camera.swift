// V4L2Camera: one UVC camera as a CameraSource.
//   V4L2Camera(config: CameraConfig, bufferCount: 4)   nothing touches the device until start()
//   start()  open → QUERYCAP (capture + streaming) → check the format/size/rate against ENUM_FMT /
//            FRAMESIZES / FRAMEINTERVALS → S_FMT → S_PARM → REQBUFS + QUERYBUF + mmap → QBUF all →
//            STREAMON → capture thread (poll, DQBUF, decode MJPEG/YUYV → RGB8 into a FrameRing, QBUF)
//   stop()   ends the thread, STREAMOFF, munmap, close (idempotent)
//   copyLatestFrame(into:)  newest decoded frame, no allocation
//   droppedFrames / decodeErrors   counters (a gap in v4l2 sequence numbers counts as dropped)
// Frame timestamps: the driver's v4l2_buffer.timestamp when it is CLOCK_MONOTONIC (UVC sets the
// monotonic flag), else the dequeue time; the driver's raw value is kept as driverTimestampNanos.
import CTendonV4L2
import Foundation
import Synchronization

public final class V4L2Camera: CameraSource, @unchecked Sendable {
    public let config: CameraConfig
    public let bufferCount: Int
    public var name: String { config.name }
    public var width: Int { config.width }
    public var height: Int { config.height }

    private let ring: FrameRing
    private let running = Atomic<Bool>(false)
    private let dropped = Atomic<UInt64>(0)
    private let decodeFailures = Atomic<UInt64>(0)
    private let finished = DispatchSemaphore(value: 0)
    // Owned by start()/stop() and the capture thread between them.
    private var fd: Int32 = -1
    private var mappings: [(pointer: UnsafeMutableRawPointer, length: Int)] = []
    private var bytesPerLine = 0

    public init(config: CameraConfig, bufferCount: Int = 4) {
        self.config = config
        self.bufferCount = max(2, bufferCount)
        ring = FrameRing(maxWidth: config.width, maxHeight: config.height)
    }

    deinit { stop() }

    public var droppedFrames: UInt64 { dropped.load(ordering: .relaxed) }
    public var decodeErrors: UInt64 { decodeFailures.load(ordering: .relaxed) }

    public func copyLatestFrame(into buffer: UnsafeMutableRawBufferPointer) -> CameraFrameHeader? {
        ring.copyLatest(into: buffer)
    }

    public func start() throws(CameraError) {
        guard running.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else {
            throw .alreadyStarted(name: name)
        }
        do {
            try open()
        } catch {
            release()
            running.store(false, ordering: .releasing)
            throw error
        }
        let thread = Thread { [self] in
            captureLoop()
            finished.signal()
        }
        thread.name = "camera-\(name)"
        thread.start()
    }

    public func stop() {
        guard running.compareExchange(expected: true, desired: false, ordering: .acquiringAndReleasing).exchanged else {
            return
        }
        finished.wait()
        _ = tendon_v4l2_stream(fd, 0)
        release()
    }

    private var fourcc: UInt32 { config.format == .mjpeg ? tendon_v4l2_fourcc_mjpeg() : tendon_v4l2_fourcc_yuyv() }

    private func open() throws(CameraError) {
        let device = config.device
        fd = Glibc.open(device, O_RDWR | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else { throw .cannotOpen(device: device, errno: errno) }
        let info = try V4L2Devices.describe(fd: fd, path: device)
        try Self.checkOffered(info: info, config: config)

        var format = tendon_v4l2_format(fourcc: fourcc, width: UInt32(width), height: UInt32(height),
                                        bytes_per_line: 0, size_image: 0)
        try check(tendon_v4l2_set_format(fd, &format), "VIDIOC_S_FMT")
        guard format.fourcc == fourcc, Int(format.width) == width, Int(format.height) == height else {
            throw .unsupportedFormat(device: device, requested: requested,
                                     available: "the driver chose \(fourccString(format.fourcc)) \(format.width)x\(format.height)")
        }
        bytesPerLine = Int(format.bytes_per_line)
        var interval = tendon_v4l2_frame_interval(type: 1, numerator: 1, denominator: UInt32(config.fps))
        // Some UVC cameras do not support S_PARM; their one rate is then what they deliver.
        let parm = tendon_v4l2_set_frame_interval(fd, &interval)
        guard parm == 0 || parm == ENOTTY || parm == EINVAL else {
            throw .ioctlFailed(device: device, request: "VIDIOC_S_PARM", errno: parm)
        }

        var count = UInt32(bufferCount)
        try check(tendon_v4l2_request_buffers(fd, &count), "VIDIOC_REQBUFS")
        guard count >= 2 else {
            throw .ioctlFailed(device: device, request: "VIDIOC_REQBUFS (got \(count) buffers)", errno: ENOMEM)
        }
        for index in 0..<count {
            var offset: UInt32 = 0, length: UInt32 = 0
            try check(tendon_v4l2_query_buffer(fd, index, &offset, &length), "VIDIOC_QUERYBUF")
            let p = mmap(nil, Int(length), PROT_READ | PROT_WRITE, MAP_SHARED, fd, off_t(offset))
            guard let p, p != MAP_FAILED else { throw .mmapFailed(device: device, errno: errno) }
            mappings.append((p, Int(length)))
            try check(tendon_v4l2_queue_buffer(fd, index), "VIDIOC_QBUF")
        }
        try check(tendon_v4l2_stream(fd, 1), "VIDIOC_STREAMON")
    }

    private var requested: String { "\(config.format.rawValue) \(width)x\(height) @ \(config.fps) fps" }

    /// Refuses a config the device does not list, naming what it does offer.
    public static func checkOffered(info: V4L2DeviceInfo, config: CameraConfig) throws(CameraError) {
        let requested = "\(config.format.rawValue) \(config.width)x\(config.height) @ \(config.fps) fps"
        guard let format = info.formats.first(where: { $0.captureFormat == config.format }) else {
            throw .unsupportedFormat(device: info.path, requested: requested, available: info.offered)
        }
        // Drivers that list no sizes (or no rates) accept what S_FMT negotiates.
        guard !format.sizes.isEmpty else { return }
        guard let size = format.sizes.first(where: { $0.width == config.width && $0.height == config.height }) else {
            throw .unsupportedFormat(device: info.path, requested: requested, available: info.offered)
        }
        guard size.framesPerSecond.isEmpty
                || size.framesPerSecond.contains(where: { abs($0 - Double(config.fps)) < 0.5 }) else {
            throw .unsupportedFormat(device: info.path, requested: requested, available: info.offered)
        }
    }

    private func check(_ result: Int32, _ request: String) throws(CameraError) {
        guard result == 0 else { throw .ioctlFailed(device: config.device, request: request, errno: result) }
    }

    private func release() {
        for m in mappings { munmap(m.pointer, m.length) }
        mappings.removeAll()
        if fd >= 0 {
            var zero: UInt32 = 0
            _ = tendon_v4l2_request_buffers(fd, &zero)
            close(fd)
        }
        fd = -1
    }

    private func captureLoop() {
        let decoder = JPEGDecoder()
        let rgb = UnsafeMutableRawBufferPointer.allocate(byteCount: width * height * 3, alignment: 16)
        defer { rgb.deallocate() }
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var sequence: UInt64 = 0
        var lastDriverSequence: UInt32?
        while running.load(ordering: .acquiring) {
            pfd.revents = 0
            let ready = poll(&pfd, 1, 200)
            guard ready > 0 else { continue }
            var buffer = tendon_v4l2_buffer()
            guard tendon_v4l2_dequeue_buffer(fd, &buffer) == 0 else { continue }
            let now = MonotonicClock.nowNanos()
            if let last = lastDriverSequence, buffer.sequence > last &+ 1 {
                dropped.add(UInt64(buffer.sequence - last - 1), ordering: .relaxed)
            }
            lastDriverSequence = buffer.sequence
            let index = Int(buffer.index)
            if index < mappings.count {
                let data = UnsafeRawBufferPointer(start: mappings[index].pointer,
                                                  count: min(Int(buffer.bytes_used), mappings[index].length))
                var ok = false
                switch config.format {
                case .yuyv:
                    ok = YUYVConverter.convert(yuyv: data, width: width, height: height,
                                               bytesPerLine: bytesPerLine > 0 ? bytesPerLine : nil, into: rgb)
                case .mjpeg:
                    ok = (try? decoder.decode(data, into: rgb, expectedWidth: width, expectedHeight: height)) != nil
                }
                if ok {
                    let driver = buffer.timestamp_ns
                    let header = CameraFrameHeader(width: width, height: height, sequence: sequence,
                                                   timestampNanos: buffer.timestamp_monotonic != 0 && driver > 0 ? driver : now,
                                                   driverTimestampNanos: driver > 0 ? driver : nil)
                    ring.publish(header: header, pixels: UnsafeRawBufferPointer(rgb))
                    sequence += 1
                } else {
                    decodeFailures.add(1, ordering: .relaxed)
                }
            }
            _ = tendon_v4l2_queue_buffer(fd, buffer.index)
        }
    }
}
