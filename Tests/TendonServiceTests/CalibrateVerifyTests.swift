import Foundation
import Testing
import TendonHardware
@testable import TendonService

@Suite(.serialized) struct CalibrateVerifyTests {
    @Test func verifyPassesOnAHealthySimulator() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        let buses = try ports.select(["follower_left", "leader_left"])
        let rows = try CalibrationVerifier.run(ports: ports, buses: buses, console: fixture.console)
        #expect(rows.allSatisfy { $0.pass })
        // Seven joint moves on the follower, nine servos and two shadows on the leader.
        #expect(rows.filter { $0.bus == "follower_left" && $0.item.hasSuffix(" move") }.count == 7)
        #expect(rows.filter { $0.bus == "leader_left" }.count == 11)
        // The moves went out and came back; torque stays on (the arm would fall otherwise).
        #expect(fixture.bus("follower_left")?.withServo(id: 1) { $0.torqueEnabled } == true)
        let waist = try #require(fixture.present("follower_left", 1))
        #expect(abs(waist - 2048) <= 8)
    }

    @Test func verifyFailsWhenAServoIsSilent() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        fixture.bus("follower_left")?.setSilent(id: 7)
        fixture.bus("leader_left")?.setSilent(id: 4)
        let error = #expect(throws: CalibrationError.self) {
            try CalibrationVerifier.run(ports: ports, buses: try ports.select(["follower_left", "leader_left"]),
                                        console: fixture.console)
        }
        let message = error?.description ?? ""
        #expect(message.contains("bus follower_left start-up") && message.contains("servo 7 (wrist_angle)"), "\(message)")
        #expect(message.contains("bus leader_left elbow servo 4: does not answer"), "\(message)")
    }

    @Test func verifyFailsWhenAServoIsOffset() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        // The elbow's shadow reads 150 ticks (0.23 rad) away from its primary: a wrong offset.
        fixture.bus("follower_right")?.moveShaft(id: 5, to: 2048 - 150)
        // A leader joint outside its recorded range.
        fixture.bus("leader_right")?.moveShaft(id: 7, to: 400)
        let error = #expect(throws: CalibrationError.self) {
            try CalibrationVerifier.run(ports: ports, buses: try ports.select(["follower_right", "leader_right"]),
                                        console: fixture.console)
        }
        let message = error?.description ?? ""
        #expect(message.contains("bus follower_right elbow shadow 5: reads"), "\(message)")
        #expect(message.contains("offset wrong"), "\(message)")
        #expect(message.contains("bus leader_right wrist_angle servo 7: at 400 ticks, outside"), "\(message)")
        // Servos that disagree never get torque.
        #expect(fixture.bus("follower_right")?.withServo(id: 4) { $0.torqueEnabled } == false)
    }

    @Test func verifyFailsWhenAFollowerDoesNotTrack() throws {
        let fixture = try CalibrateFixture()
        let ports = try fixture.start()
        // A wrist that barely moves (a jammed joint, a slipping horn): present never reaches commanded.
        _ = fixture.bus("follower_left")?.withServo(id: 8) { $0.timeConstantSeconds = 1000 }
        var options = CalibrationVerifier.Options()
        options.settleTimeoutSeconds = 0.3
        let error = #expect(throws: CalibrationError.self) {
            try CalibrationVerifier.run(ports: ports, buses: try ports.select(["follower_left"]),
                                        console: fixture.console, options: options)
        }
        let message = error?.description ?? ""
        #expect(message.contains("bus follower_left wrist_rotate move: commanded"), "\(message)")
        #expect(!message.contains("wrist_angle"), "\(message)")
    }
}
