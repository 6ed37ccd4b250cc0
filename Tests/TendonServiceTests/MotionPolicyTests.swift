import Foundation
import Testing
@testable import TendonService

@Suite struct MotionPolicyTests {
    @Test func policyArgumentsParse() throws {
        #expect(try MotionPolicyKind(argument: "hold") == .hold)
        #expect(try MotionPolicyKind(argument: "sine") == .sine)
        #expect(try MotionPolicyKind(argument: "replay:/tmp/a.csv") == .replay(path: "/tmp/a.csv"))
        #expect(throws: PolicyError.self) { try MotionPolicyKind(argument: "replay:") }
        #expect(throws: PolicyError.self) { try MotionPolicyKind(argument: "dance") }
    }

    @Test func sineStartsAtTheStartPoseWithoutAStepAndStaysInLimits() {
        let limits = [(min: -1.0, max: 1.0), (min: -0.5, max: 0.1), (min: 0.0, max: 0.05)]
        let start = [0.0, 0.05, 0.049]
        let policy = SinePolicy(start: start, limits: limits, controlFrequencyHz: 50)
        #expect(policy.position(atSeconds: 0) == start)
        // Near t = 0 the offset grows quadratically (zero initial velocity).
        let early = policy.position(atSeconds: 0.01)
        #expect(abs(early[0] - start[0]) < 1e-3)
        for k in 0..<500 {
            let q = policy.position(atSeconds: Double(k) * 0.01)
            for (value, limit) in zip(q, limits) {
                #expect(value >= limit.min - 1e-12 && value <= limit.max + 1e-12)
            }
        }
        // The middle joint has more room below than above, so it moves downwards.
        #expect(policy.position(atSeconds: 2)[1] < start[1])
    }

    @Test func sineChunksAreTimedAtTheControlFrequency() {
        let policy = SinePolicy(start: [0], limits: [(min: -1, max: 1)], controlFrequencyHz: 50, chunkSize: 10)
        let chunk = policy.chunk(originNanos: 1_000, firstStep: 5)
        #expect(chunk.timesNanos.count == 10)
        #expect(chunk.timesNanos[0] == 1_000 + 5 * 20_000_000)
        #expect(chunk.timesNanos[1] - chunk.timesNanos[0] == 20_000_000)
        #expect(chunk.positions[0] == policy.position(atSeconds: 0.1))
    }

    @Test func replayCSVParsesAndRejectsBadRows() throws {
        let ok = try ReplayFile.parse("t,a,b\n0.0,1,2\n0.02, 1.5 ,2.5\n", file: "r.csv", joints: 2)
        #expect(ok.seconds == [0, 0.02])
        #expect(ok.positions == [[1, 2], [1.5, 2.5]])
        #expect { _ = try ReplayFile.parse("0,1\n", file: "r.csv", joints: 2) } throws: {
            ($0 as? PolicyError)?.description == "r.csv:1: expected 3 columns (t and 2 joints), found 2"
        }
        #expect { _ = try ReplayFile.parse("0,1,2\n0,1,2\n", file: "r.csv", joints: 2) } throws: {
            ($0 as? PolicyError)?.description.contains("r.csv:2: time 0.0 s does not increase") == true
        }
        #expect { _ = try ReplayFile.parse("0,1,nan\n", file: "r.csv", joints: 2) } throws: {
            ($0 as? PolicyError)?.description.contains("finite") == true
        }
        #expect(throws: PolicyError.self) { _ = try ReplayFile.parse("# nothing\n", file: "r.csv", joints: 2) }
    }

    @Test func replayApproachesTheFirstRowWithinVelocityLimits() throws {
        let file = try ReplayFile.parse("0,1.0\n1,1.0\n", file: "r.csv", joints: 1)
        let block = file.block(originNanos: 0, current: [0], maxVelocities: [1.0])
        #expect(block.positions.first == [0])
        // 1 rad at half the velocity limit takes 2 s.
        #expect(block.timesNanos[1] == 2_000_000_000)
        #expect(block.timesNanos[2] == 3_000_000_000)
    }
}
