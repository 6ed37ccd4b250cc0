import Foundation
import TendonHardware

/// Loads Tests/Fixtures/dynamixel/sdk_packets.json, written by Tools/reference/dynamixel_fixtures.py
/// with ROBOTIS dynamixel-sdk 4.1.0.
struct DynamixelSDKFixtures: Decodable {
    struct Instruction: Decodable {
        var name: String
        var id: UInt8
        var instruction: UInt8
        var params: [UInt8]
        var bytes: [UInt8]
        var timeout_packet_length: Int?
        var timeout_ms: Double?
        var python_sdk_sent_unstuffed: [UInt8]?
    }
    struct SDKDecoded: Decodable {
        var result: Int
        var error: UInt8?
        var id: UInt8?
        var value: UInt32?
        var model_number: UInt16?
        var data: [String: [UInt8]]?
        var errors: [String: UInt8]?
        var ids: [UInt8]?
        var length: Int?
        var entries: [[Int]]?
        var corrupt: Bool?
        var intended: [UInt8]?

        enum CodingKeys: String, CodingKey {
            case result, error, id, value, model_number, data, errors, ids, length, entries, corrupt, intended
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            result = try c.decode(Int.self, forKey: .result)
            error = try c.decodeIfPresent(UInt8.self, forKey: .error)
            id = try c.decodeIfPresent(UInt8.self, forKey: .id)
            value = try c.decodeIfPresent(UInt32.self, forKey: .value)
            model_number = try c.decodeIfPresent(UInt16.self, forKey: .model_number)
            // "data" is a list for single reads and a map id → bytes for groups.
            if let list = try? c.decodeIfPresent([UInt8].self, forKey: .data) {
                data = ["": list]
            } else {
                data = try c.decodeIfPresent([String: [UInt8]].self, forKey: .data)
            }
            errors = try c.decodeIfPresent([String: UInt8].self, forKey: .errors)
            ids = try c.decodeIfPresent([UInt8].self, forKey: .ids)
            length = try c.decodeIfPresent(Int.self, forKey: .length)
            entries = try c.decodeIfPresent([[Int]].self, forKey: .entries)
            corrupt = try c.decodeIfPresent(Bool.self, forKey: .corrupt)
            intended = try c.decodeIfPresent([UInt8].self, forKey: .intended)
        }
    }
    struct Status: Decodable {
        var name: String
        var bytes: [UInt8]
        var sdk: SDKDecoded
    }

    var sdk: String
    var baud: Int
    var instructions: [Instruction]
    var statuses: [Status]

    static let url = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/dynamixel/sdk_packets.json")

    static func load() throws -> DynamixelSDKFixtures {
        try JSONDecoder().decode(DynamixelSDKFixtures.self, from: Data(contentsOf: url))
    }

    func instruction(_ name: String) -> Instruction? { instructions.first { $0.name == name } }
    func status(_ name: String) -> Status? { statuses.first { $0.name == name } }
}
