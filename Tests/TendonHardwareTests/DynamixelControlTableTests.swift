import Testing
import TendonHardware

/// Control-table facts checked against values read from the ROBOTIS e-manual pages, plus
/// structural invariants (no overlapping registers) that a transcription slip would break.
@Suite struct DynamixelControlTableTests {
    @Test(arguments: DynamixelModel.all.map(\.name))
    func registersDoNotOverlapAndAreaFollowsAddress(name: String) throws {
        let model = try #require(DynamixelModel.named(name))
        let sorted = model.registers.sorted { $0.address < $1.address }
        for (a, b) in zip(sorted, sorted.dropFirst()) {
            #expect(Int(a.address) + a.size <= Int(b.address), "\(a) overlaps \(b)")
        }
        for r in model.registers {
            #expect((r.address < 64) == (r.area == .eeprom), "\(r)")
            #expect([1, 2, 4].contains(r.size), "\(r)")
        }
        #expect(Set(model.registers.map(\.name)).count == model.registers.count)
    }

    @Test func lookupByNameAndNumber() {
        #expect(DynamixelModel.named("XM540-W270")?.modelNumber == 1120)
        #expect(DynamixelModel.named("xm430-w350-t")?.modelNumber == 1020)
        #expect(DynamixelModel.withNumber(1060)?.name == "XL430-W250")
        #expect(DynamixelModel.withNumber(1070)?.name == "XC430-W150")
        #expect(DynamixelModel.named("XM430-W3500") == nil)
        #expect(DynamixelModel.withNumber(1) == nil)
    }

    @Test func sharedAddressesFromEManual() {
        for model in DynamixelModel.all {
            #expect(model.register(.presentPosition).map { [Int($0.address), $0.size] } == [132, 4])
            #expect(model.register(.goalPosition).map { [Int($0.address), $0.size] } == [116, 4])
            #expect(model.register(.presentVelocity).map { [Int($0.address), $0.size] } == [128, 4])
            #expect(model.register(.torqueEnable)?.address == 64)
            #expect(model.register(.hardwareErrorStatus)?.access == .read)
            #expect(model.register(.operatingMode)?.initialValue == 3)
            #expect(model.register(.returnDelayTime)?.initialValue == 250)
            #expect(model.register(.profileVelocity)?.address == 112)
            #expect(model.register(.presentInputVoltage).map { [Int($0.address), $0.size] } == [144, 2])
            #expect(model.register(.presentTemperature)?.address == 146)
        }
    }

    @Test func currentSensingDiffers() throws {
        let xm540 = DynamixelModel.xm540W270
        #expect(xm540.register(.presentCurrent)?.address == 126)
        #expect(xm540.register(.currentLimit)?.initialValue == 2047)
        #expect(xm540.register(.velocityLimit)?.initialValue == 128)
        #expect(xm540.currentMilliampsPerUnit == 2.69)
        #expect(DynamixelModel.xm430W350.register(.currentLimit)?.initialValue == 1193)
        #expect(DynamixelModel.xm430W350.register(.goalCurrent)?.address == 102)
        for model in [DynamixelModel.xl430W250, .xc430W150] {
            #expect(model.register(.presentCurrent) == nil)
            #expect(model.register(.goalCurrent) == nil)
            #expect(model.register(.currentLimit) == nil)
            #expect(model.register(.presentLoad)?.address == 126)
            #expect(model.currentMilliampsPerUnit == nil)
            #expect(!model.operatingModes.contains(.currentBasedPosition))
        }
        #expect(DynamixelModel.xl430W250.register(.maxVoltageLimit)?.initialValue == 140)
        #expect(DynamixelModel.xl430W250.register(.positionPGain)?.initialValue == 640)
        #expect(DynamixelModel.xc430W150.register(.velocityLimit)?.initialValue == 460)
    }

    @Test func initialMemoryIsLittleEndian() {
        let m = DynamixelModel.xm540W270.initialMemory(firmwareVersion: 46)
        #expect(m.count == 158)
        #expect(m[0] == 0x60 && m[1] == 0x04)  // 1120
        #expect(m[6] == 46)
        #expect(m[7] == 1 && m[8] == 1 && m[9] == 250 && m[11] == 3 && m[12] == 255)
        #expect(m[38] == 0xFF && m[39] == 0x07)  // 2047
        #expect(m[48] == 0xFF && m[49] == 0x0F && m[50] == 0 && m[51] == 0)
        #expect(m[63] == 52 && m[68] == 2)
        #expect(m[76] == 0x80 && m[77] == 0x07)  // 1920
        #expect(DynamixelModel.xm430W350.memorySize == 147)
        #expect(m[132] == 0x00 && m[133] == 0x08 && m[116] == 0x00 && m[117] == 0x08)  // 2048
        #expect(m[144] == 120 && m[146] == 30)
        let xl = DynamixelModel.xl430W250.initialMemory(inputVoltageTenths: nil, temperatureCelsius: 25, position: -1)
        #expect(xl[144] == 111 && xl[146] == 25)
        #expect(Array(xl[132..<136]) == [0xFF, 0xFF, 0xFF, 0xFF])
    }

    @Test func baudRates() {
        #expect(DynamixelBaudRate.bitsPerSecond(register: 3) == 1_000_000)
        #expect(DynamixelBaudRate.bitsPerSecond(register: 7) == 4_500_000)
        #expect(DynamixelBaudRate.bitsPerSecond(register: 8) == nil)
        #expect(DynamixelBaudRate.register(bitsPerSecond: 57_600) == 1)
        #expect(DynamixelBaudRate.register(bitsPerSecond: 250_000) == nil)
        #expect(DynamixelOperatingMode(rawValue: 5) == .currentBasedPosition)
        #expect(DynamixelOperatingMode(rawValue: 2) == nil)
    }
}
