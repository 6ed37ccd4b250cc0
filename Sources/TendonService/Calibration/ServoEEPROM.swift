import Foundation
import TendonHardware

/// `tendon calibrate set-id` / `set-baud`: one servo at a time. ID (7) and Baud Rate (8) are EEPROM, so
/// torque goes off first; the change is confirmed by the technician and verified by a PING at the new
/// id or rate.
public enum ServoEEPROM {
    public static func setID(ports: CalibrationPorts, bus busName: String, id: UInt8, newID: UInt8,
                             console: CalibrationConsole) throws(CalibrationError) {
        guard newID <= Dynamixel.maxID, id <= Dynamixel.maxID else {
            throw CalibrationError("ids are 0…\(Dynamixel.maxID), got \(id) → \(newID)")
        }
        guard newID != id else { throw CalibrationError("servo already has id \(id)") }
        let config = try ports.select([busName])[0]
        let bus = try ports.openBus(config)
        defer { bus.transport.close() }
        let found = try ping(bus, id: id, bus: busName, at: config.baudRate)
        if (try? bus.ping(newID)) != nil {
            throw CalibrationError("bus \(busName): id \(newID) is already taken by another servo; choose a free id")
        }
        guard try console.confirm("Change servo \(id) (\(found.modelName)) on bus \(busName) to id \(newID)?",
                                  key: "set-id") else {
            throw CalibrationError("not confirmed; servo \(id) on bus \(busName) is unchanged")
        }
        do {
            try bus.torqueOff(id)
            try writeTolerantOfReply(bus, id: id, address: 7, value: newID)
        } catch {
            throw CalibrationError("bus \(busName) servo \(id): writing ID failed: \(error)")
        }
        let after: DynamixelPingResult
        do {
            after = try bus.ping(newID)
        } catch {
            throw CalibrationError("bus \(busName): servo does not answer at its new id \(newID): \(error)")
        }
        guard after.modelNumber == found.modelNumber else {
            throw CalibrationError("bus \(busName): id \(newID) answers as model \(after.modelNumber), expected \(found.modelNumber)")
        }
        console.line("bus \(busName): servo \(id) is now id \(newID) (\(found.modelName), verified by PING)")
    }

    public static func setBaud(ports: CalibrationPorts, bus busName: String, id: UInt8, baudRate: Int,
                               currentBaudRate: Int? = nil, console: CalibrationConsole) throws(CalibrationError) {
        guard let register = DynamixelBaudRate.register(bitsPerSecond: baudRate) else {
            throw CalibrationError("\(baudRate) is not a Dynamixel baud rate (\(DynamixelBaudRate.table.map { String($0.bitsPerSecond) }.joined(separator: ", ")))")
        }
        let config = try ports.select([busName])[0]
        let from = currentBaudRate ?? config.baudRate
        let bus = try ports.openBus(config, baudRate: from)
        defer { bus.transport.close() }
        let found = try ping(bus, id: id, bus: busName, at: from)
        guard baudRate != from else { throw CalibrationError("bus \(busName) servo \(id) already runs at \(baudRate) baud") }
        var question = "Change servo \(id) (\(found.modelName)) on bus \(busName) from \(from) to \(baudRate) baud?"
        if baudRate != config.baudRate { question += " (the config's bus rate is \(config.baudRate))" }
        guard try console.confirm(question, key: "set-baud") else {
            throw CalibrationError("not confirmed; servo \(id) on bus \(busName) is unchanged")
        }
        do {
            try bus.torqueOff(id)
            try writeTolerantOfReply(bus, id: id, address: 8, value: register)
        } catch {
            throw CalibrationError("bus \(busName) servo \(id): writing Baud Rate failed: \(error)")
        }
        do throws(SerialError) {
            try bus.transport.setBaudRate(baudRate)
        } catch {
            throw CalibrationError("bus \(busName): the adapter cannot switch to \(baudRate) baud to verify: \(error)")
        }
        do {
            _ = try bus.ping(id)
        } catch {
            throw CalibrationError("bus \(busName): servo \(id) does not answer at \(baudRate) baud: \(error)")
        }
        console.line("bus \(busName): servo \(id) now runs at \(baudRate) baud (verified by PING)")
    }

    /// The status packet of an ID or Baud Rate write may come from the new id or at the new rate, so a
    /// missing or garbled reply is not a failure here; the PING that follows decides.
    private static func writeTolerantOfReply(_ bus: DynamixelBus, id: UInt8, address: UInt16,
                                             value: UInt8) throws(DynamixelError) {
        do {
            try bus.write1(id, address: address, value: value)
        } catch where error.kind == .timeout || error.kind == .corrupt || error.kind == .wrongReply {
            return
        }
    }

    private static func ping(_ bus: DynamixelBus, id: UInt8, bus name: String,
                             at rate: Int) throws(CalibrationError) -> (modelNumber: UInt16, modelName: String) {
        do {
            let p = try bus.ping(id)
            return (p.modelNumber, p.model?.name ?? "model \(p.modelNumber)")
        } catch {
            throw CalibrationError("bus \(name): servo \(id) does not answer at \(rate) baud (\(error)); run `tendon calibrate scan`")
        }
    }
}
