/// Pillow's `Image.resize(..., BICUBIC)` on 8-bit RGB, bit for bit (libImaging/Resample.c): per axis,
/// double-precision Keys cubic weights (a = −0.5, support 2 widened by the downscale factor), normalized to
/// sum 1, then rounded to fixed point with 22 fraction bits; horizontal pass first into an 8-bit
/// intermediate (rounded with +2^21, shifted, clipped to 0…255), then the vertical pass. An axis whose
/// size does not change is not filtered at all.
///
/// API summary
/// - `PillowResample.bicubic(_ image: RGBImage, width:height:) -> RGBImage`

public enum PillowResample {
    static let precisionBits = 22

    static func cubic(_ x: Double) -> Double {
        let a = -0.5
        let x = abs(x)
        if x < 1 { return ((a + 2) * x - (a + 3)) * x * x + 1 }
        if x < 2 { return (((x - 5) * x + 8) * x - 4) * a }
        return 0
    }

    /// Per output index: first input index, tap count, and fixed-point weights (ksize slots each).
    struct Coefficients {
        var ksize: Int
        var first: [Int]
        var count: [Int]
        var weights: [Int32]
    }

    static func coefficients(inSize: Int, outSize: Int) -> Coefficients {
        let scale = Double(inSize) / Double(outSize)
        let filterScale = max(scale, 1)
        let support = 2.0 * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var c = Coefficients(ksize: ksize, first: [], count: [], weights: [Int32](repeating: 0, count: outSize * ksize))
        var k = [Double](repeating: 0, count: ksize)
        for xx in 0..<outSize {
            let center = (Double(xx) + 0.5) * scale
            let ss = 1.0 / filterScale
            let xmin = max(Int(center - support + 0.5), 0)  // C's (int) truncation, then the clamp
            let xmax = min(Int(center + support + 0.5), inSize) - xmin
            var ww = 0.0
            for x in 0..<xmax {
                let w = cubic((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for x in 0..<xmax where ww != 0 { k[x] /= ww }
            for x in 0..<ksize {
                let v = x < xmax ? k[x] : 0
                let scaled = v * Double(1 << precisionBits)
                c.weights[xx * ksize + x] = Int32(v < 0 ? -0.5 + scaled : 0.5 + scaled)
            }
            c.first.append(xmin)
            c.count.append(xmax)
        }
        return c
    }

    @inline(__always) static func clip8(_ v: Int32) -> UInt8 {
        let s = v >> Int32(precisionBits)
        return s <= 0 ? 0 : (s >= 255 ? 255 : UInt8(s))
    }

    public static func bicubic(_ image: RGBImage, width outW: Int, height outH: Int) -> RGBImage {
        if outW == image.width && outH == image.height { return image }
        var current = image
        let half = Int32(1 << (precisionBits - 1))
        if outW != image.width {
            let c = coefficients(inSize: image.width, outSize: outW)
            let H = image.height, inW = image.width
            var out = [UInt8](repeating: 0, count: outW * H * 3)
            image.pixels.withUnsafeBufferPointer { src in
                for y in 0..<H {
                    let row = y * inW * 3
                    for xx in 0..<outW {
                        let xmin = c.first[xx], n = c.count[xx], kb = xx * c.ksize
                        var s0 = half, s1 = half, s2 = half
                        for x in 0..<n {
                            let w = c.weights[kb + x], p = row + (x + xmin) * 3
                            s0 &+= Int32(src[p]) &* w
                            s1 &+= Int32(src[p + 1]) &* w
                            s2 &+= Int32(src[p + 2]) &* w
                        }
                        let o = (y * outW + xx) * 3
                        out[o] = clip8(s0); out[o + 1] = clip8(s1); out[o + 2] = clip8(s2)
                    }
                }
            }
            current = RGBImage(width: outW, height: H, pixels: out)
        }
        if outH != image.height {
            let c = coefficients(inSize: image.height, outSize: outH)
            let W = current.width
            var out = [UInt8](repeating: 0, count: W * outH * 3)
            current.pixels.withUnsafeBufferPointer { src in
                for yy in 0..<outH {
                    let ymin = c.first[yy], n = c.count[yy], kb = yy * c.ksize
                    for xx in 0..<W {
                        var s0 = half, s1 = half, s2 = half
                        for y in 0..<n {
                            let w = c.weights[kb + y], p = ((y + ymin) * W + xx) * 3
                            s0 &+= Int32(src[p]) &* w
                            s1 &+= Int32(src[p + 1]) &* w
                            s2 &+= Int32(src[p + 2]) &* w
                        }
                        let o = (yy * W + xx) * 3
                        out[o] = clip8(s0); out[o + 1] = clip8(s1); out[o + 2] = clip8(s2)
                    }
                }
            }
            current = RGBImage(width: W, height: outH, pixels: out)
        }
        return current
    }
}
