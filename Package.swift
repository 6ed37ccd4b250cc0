// swift-tools-version:6.0
// Tendon: a Swift runtime for a VLA policy on an ALOHA-class dual-arm robot. Layout: ../shared/DESIGN.md §2.
import PackageDescription

let strict: [SwiftSetting] = [.enableUpcomingFeature("ExistentialAny")]

let package = Package(
    name: "Tendon",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "tendon", targets: ["tendon"]),
        .executable(name: "tendon-train", targets: ["tendon-train"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
    ],
    targets: [
        // System libraries, found through pkg-config (Makefile `setup` installs the -dev packages).
        .systemLibrary(name: "CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        // LAPACK routines inside OpenBLAS (Cholesky for GPTQ), declared by hand: no lapack.h is installed.
        .systemLibrary(name: "CLAPACK", pkgConfig: "openblas"),
        .systemLibrary(name: "CPNG", pkgConfig: "libpng",
                       providers: [.apt(["libpng-dev"])]),
        .systemLibrary(name: "CSerialPort", pkgConfig: "libserialport",
                       providers: [.apt(["libserialport-dev"])]),
        .systemLibrary(name: "CCap", pkgConfig: "libcap",
                       providers: [.apt(["libcap-dev"])]),
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .systemLibrary(name: "CTurboJPEG", pkgConfig: "libturbojpeg", providers: [.apt(["libturbojpeg0-dev"])]),
        // Video4Linux2 capture ioctls (unions and macro request codes Swift cannot use directly).
        .target(name: "CTendonV4L2"),
        // Linux interfaces that are macros (CPU_SET, termios2) and cannot be called from Swift.
        .target(name: "CTendonSupport"),
        // SIMD kernels (AVX2 / AVX-512-VNNI via per-function target attributes, chosen at run time by cpuid).
        .target(name: "CTendonKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off"])]),

        .target(name: "TendonTensor", dependencies: ["CBLAS", "CTendonSupport", "CTendonKernels"], swiftSettings: strict),
        .target(name: "TendonModel", dependencies: ["TendonTensor", "CPNG", "CTurboJPEG"], swiftSettings: strict),
        .target(name: "TendonHardware",
                dependencies: ["CSerialPort", "CTendonSupport", "CTendonV4L2", "CTurboJPEG",
                               .product(name: "Logging", package: "swift-log"),
                               .product(name: "Yams", package: "Yams")],
                swiftSettings: strict),
        .target(name: "TendonControl",
                dependencies: ["TendonHardware", "CCap", "CTendonSupport"],
                swiftSettings: strict),
        .target(name: "TendonData", dependencies: ["TendonHardware", "CHDF5", "CTurboJPEG"], swiftSettings: strict),
        .target(name: "TendonService",
                dependencies: ["TendonControl", "TendonHardware", "TendonData", "CBLAS",
                               .product(name: "Logging", package: "swift-log")],
                swiftSettings: strict),
        .executableTarget(name: "tendon",
                          dependencies: ["TendonService", "TendonControl", "TendonHardware", "TendonData", "TendonModel", "TendonTensor",
                                         "TendonTraining",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser"),
                                         .product(name: "Logging", package: "swift-log")],
                          swiftSettings: strict),
        .target(name: "TendonTraining", dependencies: ["TendonModel", "TendonTensor", "TendonData", "CBLAS", "CLAPACK"],
                swiftSettings: strict),
        .executableTarget(name: "tendon-train",
                          dependencies: ["TendonTraining", "TendonModel", "TendonTensor",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          swiftSettings: strict),

        // Test support: counts the calling thread's allocations (interposes malloc in the test bundle).
        .target(name: "CAllocationCounter", path: "Tests/Support/CAllocationCounter"),
        .testTarget(name: "TendonHardwareTests", dependencies: ["TendonHardware", "CAllocationCounter"],
                    swiftSettings: strict),
        .testTarget(name: "TendonTensorTests", dependencies: ["TendonTensor"], swiftSettings: strict),
        .testTarget(name: "TendonModelTests", dependencies: ["TendonModel", "TendonTensor"], swiftSettings: strict),
        .testTarget(name: "TendonTrainingTests", dependencies: ["TendonTraining", "TendonModel", "TendonTensor", "TendonData"],
                    swiftSettings: strict),
        .testTarget(name: "TendonControlTests", dependencies: ["TendonControl", "CAllocationCounter"],
                    swiftSettings: strict),
        .testTarget(name: "TendonDataTests", dependencies: ["TendonData"], swiftSettings: strict),
        .testTarget(name: "TendonServiceTests", dependencies: ["TendonService", "TendonData", "CAllocationCounter"],
                    swiftSettings: strict),
    ]
)
