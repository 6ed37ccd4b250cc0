import Foundation
import Testing
import TendonHardware
@testable import TendonService

@Suite(.serialized) struct CalibrateServoTests {
    @Test func scanFindsEveryServoWithItsModelAndOneMovedToAnotherRate() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        // A servo set to 57600 baud, as a new servo out of the box would be: torque off, write Baud Rate (8).
        let config = try #require(fixture.robot.bus(named: "leader_right"))
        let client = try ports.openBus(config)
        try client.torqueOff(4)
        try client.write1(4, address: 8, value: 1)
        client.transport.close()

        let result = try ServoScan.run(ports: ports, buses: fixture.robot.buses)
        let atLineRate = result.found.filter { $0.baudRate == 1_000_000 }
        #expect(atLineRate.count == 35)
        for bus in fixture.robot.buses {
            for servo in bus.servos where !(bus.name == "leader_right" && servo.id == 4) {
                let found = atLineRate.first { $0.bus == bus.name && $0.id == servo.id }
                #expect(found?.modelName == servo.model, "bus \(bus.name) id \(servo.id)")
                #expect(found?.hardwareError == 0)
                #expect(found?.firmware == 48)
            }
        }
        let moved = result.found.filter { $0.bus == "leader_right" && $0.id == 4 }
        #expect(moved.count == 1)
        #expect(moved.first?.baudRate == 57_600)
        #expect(moved.first?.modelName == "XM430-W350")
        #expect(moved.first?.remark.contains("set-baud") == true)
        #expect(result.missing.isEmpty)
        // The bus is back at its line rate: the runtime's client still finds the servos there.
        let after = try ports.openBus(config)
        defer { after.transport.close() }
        #expect(try after.ping(1).modelNumber == DynamixelModel.xm430W350.modelNumber)
        #expect(ServoScan.table(result).contains("57600"))
    }

    @Test func scanDecodesHardwareErrorsAndNamesSilentServos() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        fixture.bus("follower_left")?.raiseHardwareError(id: 6, .overheating)
        fixture.bus("follower_left")?.setSilent(id: 2)
        let buses = try ports.select(["follower_left"])
        let result = try ServoScan.run(ports: ports, buses: buses, rates: [1_000_000, 57_600])
        #expect(result.found.first { $0.id == 6 }?.hardwareError == DynamixelHardwareErrorStatus.overheating.rawValue)
        #expect(ServoScan.table(result).contains("overheating"))
        #expect(result.missing == ["bus follower_left servo 2 (shoulder)"])
    }

    @Test func setIDNeedsConfirmationAndIsVerified() throws {
        let fixture = try CalibrateFixture(script: ["n"])
        let ports = try fixture.start()
        #expect(throws: CalibrationError.self) {
            try ServoEEPROM.setID(ports: ports, bus: "follower_left", id: 9, newID: 20, console: fixture.console)
        }
        #expect(fixture.bus("follower_left")?.servoIDs.contains(9) == true)
        #expect(fixture.bus("follower_left")?.servoIDs.contains(20) == false)
        // A taken id is refused before anything is asked.
        let yes = CalibrationConsole(script: ["y"], output: { _ in })
        #expect(throws: CalibrationError.self) {
            try ServoEEPROM.setID(ports: ports, bus: "follower_left", id: 9, newID: 8, console: yes)
        }
        try ServoEEPROM.setID(ports: ports, bus: "follower_left", id: 9, newID: 20, console: yes)
        #expect(fixture.bus("follower_left")?.servoIDs.contains(20) == true)
        #expect(fixture.bus("follower_left")?.servoIDs.contains(9) == false)
        #expect(fixture.bus("follower_left")?.withServo(id: 20) { $0.torqueEnabled } == false)
    }

    @Test func setBaudNeedsConfirmationAndIsVerifiedAtTheNewRate() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        let no = CalibrationConsole(script: [""], output: { _ in })
        #expect(throws: CalibrationError.self) {
            try ServoEEPROM.setBaud(ports: ports, bus: "leader_left", id: 3, baudRate: 2_000_000, console: no)
        }
        #expect(fixture.bus("leader_left")?.withServo(id: 3) { $0.baudRateBitsPerSecond } == 1_000_000)
        try ServoEEPROM.setBaud(ports: ports, bus: "leader_left", id: 3, baudRate: 2_000_000,
                                console: CalibrationConsole(assumeYes: true, output: { _ in }))
        #expect(fixture.bus("leader_left")?.withServo(id: 3) { $0.baudRateBitsPerSecond } == 2_000_000)
        // And back, naming the rate it runs at now.
        try ServoEEPROM.setBaud(ports: ports, bus: "leader_left", id: 3, baudRate: 1_000_000, currentBaudRate: 2_000_000,
                                console: CalibrationConsole(script: ["y"], output: { _ in }))
        #expect(fixture.bus("leader_left")?.withServo(id: 3) { $0.baudRateBitsPerSecond } == 1_000_000)
        #expect(throws: CalibrationError.self) {
            try ServoEEPROM.setBaud(ports: ports, bus: "leader_left", id: 3, baudRate: 1_234_567,
                                    console: CalibrationConsole(assumeYes: true, output: { _ in }))
        }
    }
}
