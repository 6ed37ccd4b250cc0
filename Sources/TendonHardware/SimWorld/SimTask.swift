// Simulated world API (issue #5), the task:
//   BlockColor                         .red .green .blue (with the RGB the renderer paints)
//   SimBlock                           colour, centre (world, m), half size
//   SimTask(world:seed:)               three blocks at seeded random places, a seeded target and arm
//   SimTask(world:blocks:target:arm:)  explicit
//   instruction                        "touch the red block with the left gripper"
//   update(jointPositions:time:) -> Bool   feed the 14-D FOLLOWER joints; true once the named arm's
//                                      pinch point has stayed within 3 cm of the named block's centre
//                                      for 0.5 s (latched)
import Foundation

public enum BlockColor: String, Sendable, CaseIterable {
    case red, green, blue

    public var rgb: (UInt8, UInt8, UInt8) {
        switch self {
        case .red: (220, 30, 30)
        case .green: (30, 190, 40)
        case .blue: (30, 60, 220)
        }
    }
}

public struct SimBlock: Sendable, Equatable {
    public var color: BlockColor
    /// Centre of the cube; it rests on the table, so center.z == halfSize.
    public var center: Vec3
    public var halfSize: Double

    public init(color: BlockColor, center: Vec3, halfSize: Double = 0.02) {
        self.color = color
        self.center = center
        self.halfSize = halfSize
    }
}

/// SplitMix64 (as a RandomNumberGenerator): a tiny seeded generator so a seed gives the same scene on every machine.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

public struct SimTask: Sendable {
    public static let successRadius = 0.03
    public static let holdSeconds = 0.5
    /// Blocks are placed in this square around the table centre (reachable by both arms) and at least
    /// `minimumSeparation` apart, so touching one block never counts for another.
    public static let placementHalfExtent = 0.12
    public static let minimumSeparation = 0.10

    public var world: SimWorld
    public var blocks: [SimBlock]
    public var target: BlockColor
    public var arm: ArmSide
    public private(set) var succeeded = false
    /// Since when the pinch point has been inside the radius (nil: it is outside).
    public private(set) var insideSince: Double?

    public init(world: SimWorld, blocks: [SimBlock], target: BlockColor, arm: ArmSide) {
        self.world = world
        self.blocks = blocks
        self.target = target
        self.arm = arm
    }

    public init(world: SimWorld, seed: UInt64) {
        var rng = SeededGenerator(seed: seed)
        var placed: [SimBlock] = []
        for color in BlockColor.allCases {
            var center = Vec3.zero
            for _ in 0..<1000 {
                let h = Self.placementHalfExtent
                center = Vec3(Double.random(in: -h...h, using: &rng), Double.random(in: -h...h, using: &rng), 0.02)
                if placed.allSatisfy({ length($0.center - center) >= Self.minimumSeparation }) { break }
            }
            placed.append(SimBlock(color: color, center: center))
        }
        let target = BlockColor.allCases[Int(rng.next() % 3)]
        let arm: ArmSide = rng.next() % 2 == 0 ? .left : .right
        self.init(world: world, blocks: placed, target: target, arm: arm)
    }

    public var instruction: String { "touch the \(target.rawValue) block with the \(arm.rawValue) gripper" }

    public func block(_ color: BlockColor) -> SimBlock? { blocks.first { $0.color == color } }

    /// Distance from the named arm's pinch point to the named block's centre.
    public func distance(jointPositions: [Double]) -> Double {
        guard let b = block(target) else { return .infinity }
        return length(world.armFrames(arm, joints: jointPositions).pinch - b.center)
    }

    public mutating func update(jointPositions: [Double], time: Double) -> Bool {
        if succeeded { return true }
        if distance(jointPositions: jointPositions) <= Self.successRadius {
            let since = insideSince ?? time
            insideSince = since
            if time - since >= Self.holdSeconds { succeeded = true }
        } else {
            insideSince = nil
        }
        return succeeded
    }

    public mutating func reset() {
        succeeded = false
        insideSince = nil
    }
}
