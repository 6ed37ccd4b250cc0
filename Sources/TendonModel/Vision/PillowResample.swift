/// Pillow's `Image.resize(..., BICUBIC)` on 8-bit RGB, bit for bit (libImaging/Resample.c, Pillow 13): per
/// axis, double-precision Keys cubic weights (a = −0.5, support 2 widened by the downscale factor),
/// normalized to sum 1, then rounded to fixed point with 22 fraction bits; two separable passes, each into
/// an 8-bit image (rounded with +2^21, shifted, clipped to 0…255). An axis whose size does not change is
/// not filtered at all.
///
/// The pass order matters because the intermediate is rounded to 8 bits. Pillow 13 (python-pillow/Pillow
/// #9549) runs the vertical pass first when the height shrinks by more than twice as many pixels as the
/// width does (so always when the width grows or stays and the height shrinks), the horizontal pass first
/// otherwise. Measured against Pillow 13.0.0: strict `>` (a 2.0 ratio of the losses stays horizontal-first).
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

    /// Pillow 13's choice of pass order (see the type comment).
    static func verticalFirst(inWidth: Int, inHeight: Int, outWidth: Int, outHeight: Int) -> Bool {
        outHeight < inHeight && inHeight - outHeight > 2 * (inWidth - outWidth)
    }

    public static func bicubic(_ image: RGBImage, width outW: Int, height outH: Int) -> RGBImage {
        if outW == image.width && outH == image.height { return image }
        if verticalFirst(inWidth: image.width, inHeight: image.height, outWidth: outW, outHeight: outH) {
            return horizontal(vertical(image, height: outH), width: outW)
        }
        return vertical(horizontal(image, width: outW), height: outH)
    }

    static func horizontal(_ image: RGBImage, width outW: Int) -> RGBImage {
        if outW == image.width { return image }
        let half = Int32(1 << (precisionBits - 1))
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
        return RGBImage(width: outW, height: H, pixels: out)
    }

    static func vertical(_ image: RGBImage, height outH: Int) -> RGBImage {
        if outH == image.height { return image }
        let half = Int32(1 << (precisionBits - 1))
        let c = coefficients(inSize: image.height, outSize: outH)
        let W = image.width
        var out = [UInt8](repeating: 0, count: W * outH * 3)
        image.pixels.withUnsafeBufferPointer { src in
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
        return RGBImage(width: W, height: outH, pixels: out)
    }
}
