import TendonHardware

/// `tendon calibrate scan`: every servo on each bus at every X-series baud rate (broadcast PING), with its
/// model, firmware and decoded Hardware Error Status. The line rate is restored afterwards.
public enum ServoScan {
    public struct Found: Sendable, Equatable {
        public var bus: String
        public var id: UInt8
        public var modelNumber: UInt16
        public var modelName: String
        public var firmware: UInt8
        public var baudRate: Int
        /// nil when the register could not be read.
        public var hardwareError: UInt8?
        /// What the robot config says about this servo at this rate ("ok", or the mismatch).
        public var remark: String
    }

    public struct Result: Sendable {
        public var found: [Found]
        /// Rates an adapter refused (bus → rates).
        public var skippedRates: [String: [Int]]
        /// Servos of the config that answered at no rate, as "bus N (joint)".
        public var missing: [String]
    }

    /// `maxServos` sizes the broadcast reply window (each reply 14 bytes + the factory return delay).
    public static func run(ports: CalibrationPorts, buses: [BusConfig], rates: [Int]? = nil,
                           maxServos: Int = 32) throws(CalibrationError) -> Result {
        let rates = rates ?? DynamixelBaudRate.table.map(\.bitsPerSecond)
        var result = Result(found: [], skippedRates: [:], missing: [])
        for busConfig in buses {
            // Factory Return Delay Time is 250 × 2 µs; a scan must not miss servos still set to it.
            let bus = try ports.openBus(busConfig, returnDelayMicros: 500)
            defer { bus.transport.close() }
            for rate in rates {
                do throws(SerialError) {
                    try bus.transport.setBaudRate(rate)
                } catch {
                    result.skippedRates[busConfig.name, default: []].append(rate)
                    continue
                }
                let window = bus.timeoutNanos(requestBytes: 10, replyBytes: 14 * maxServos, replies: maxServos)
                let answers: [DynamixelPingResult]
                do {
                    answers = try bus.broadcastPing(timeoutNanos: window)
                } catch {
                    throw CalibrationError("bus \(busConfig.name) at \(rate) baud: broadcast PING failed: \(error)")
                }
                for answer in answers {
                    let hardware = try? bus.read1(answer.id, address: 70)
                    let modelName = answer.model?.name ?? "unknown (\(answer.modelNumber))"
                    result.found.append(Found(bus: busConfig.name, id: answer.id, modelNumber: answer.modelNumber,
                                              modelName: modelName, firmware: answer.firmwareVersion,
                                              baudRate: rate, hardwareError: hardware,
                                              remark: remark(answer, rate: rate, bus: busConfig)))
                }
            }
            do throws(SerialError) {
                try bus.transport.setBaudRate(busConfig.baudRate)
            } catch {
                throw CalibrationError("bus \(busConfig.name): cannot restore the line rate \(busConfig.baudRate): \(error)")
            }
            for servo in busConfig.servos
            where !result.found.contains(where: { $0.bus == busConfig.name && $0.id == servo.id }) {
                result.missing.append("bus \(busConfig.name) servo \(servo.id) (\(servo.joint))")
            }
        }
        return result
    }

    static func remark(_ answer: DynamixelPingResult, rate: Int, bus: BusConfig) -> String {
        guard let servo = bus.servos.first(where: { $0.id == answer.id }) else {
            return "not in the config (`tendon calibrate set-id`)"
        }
        var problems: [String] = []
        if let expected = DynamixelModel.named(servo.model), expected.modelNumber != answer.modelNumber {
            problems.append("config says \(expected.name)")
        }
        if rate != bus.baudRate { problems.append("config says \(bus.baudRate) baud (`tendon calibrate set-baud`)") }
        return problems.isEmpty ? "ok (\(servo.joint)\(servo.shadowOf != nil ? " shadow" : ""))" : problems.joined(separator: "; ")
    }

    public static func table(_ result: Result) -> String {
        var rows = [["bus", "id", "model", "firmware", "baud", "hardware error", "config"]]
        for f in result.found {
            let hardware = f.hardwareError.map { "\($0): \(DynamixelHardwareErrorStatus(rawValue: $0))" } ?? "unreadable"
            rows.append([f.bus, "\(f.id)", f.modelName, "\(f.firmware)", "\(f.baudRate)", hardware, f.remark])
        }
        var text = formatTable(rows)
        for (bus, rates) in result.skippedRates.sorted(by: { $0.key < $1.key }) {
            text += "bus \(bus): the adapter refused \(rates.map(String.init).joined(separator: ", ")) baud (not scanned)\n"
        }
        for m in result.missing { text += "missing: \(m) answered at no rate\n" }
        return text
    }
}

/// Left-aligned columns, two spaces apart.
func formatTable(_ rows: [[String]]) -> String {
    guard let first = rows.first else { return "" }
    var widths = [Int](repeating: 0, count: first.count)
    for row in rows { for (i, cell) in row.enumerated() where i < widths.count { widths[i] = max(widths[i], cell.count) } }
    var out = ""
    for row in rows {
        var line = ""
        for (i, cell) in row.enumerated() {
            line += i == row.count - 1 ? cell : cell.padding(toLength: widths[i] + 2, withPad: " ", startingAt: 0)
        }
        out += line + "\n"
    }
    return out
}
