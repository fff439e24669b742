// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "pg-temporal",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "temporal", targets: ["temporal"]),
        .library(name: "TemporalKit", targets: ["TemporalKit"]),
        .library(name: "Postgres", targets: ["Postgres"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/modelcontextprotocol/swift-sdk", from: "0.12.1"),
    ],
    targets: [
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        .target(
            name: "Postgres",
            dependencies: ["CLibPQ"]
        ),
        .systemLibrary(
            name: "CZlib",
            pkgConfig: "zlib",
            providers: [.apt(["zlib1g-dev"]), .brew(["zlib"])]
        ),
        .target(
            name: "TemporalKit",
            dependencies: ["Postgres", "CZlib"]
        ),
        .systemLibrary(
            name: "CBSON",
            pkgConfig: "libbson-1.0",
            providers: [.apt(["libbson-dev"]), .brew(["mongo-c-driver"])]
        ),
        .target(
            name: "ChangeStream",
            dependencies: [
                "Postgres", "CBSON", "TemporalKit",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "TemporalMCP",
            dependencies: [
                "TemporalKit", "ChangeStream", "Postgres",
                .product(name: "MCP", package: "swift-sdk"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "temporal",
            dependencies: [
                "TemporalKit",
                "ChangeStream",
                "TemporalMCP",
                "Postgres",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ]
        ),
        .target(
            name: "TestSupport",
            dependencies: ["Postgres", "CMongoC"],
            path: "Tests/TestSupport"
        ),
        // The whole C driver, linked, for the tests' MongoDB reader only.
        .systemLibrary(
            name: "CMongoC",
            path: "Tests/CMongoC",
            pkgConfig: "libmongoc-1.0",
            providers: [.apt(["libmongoc-dev"])]
        ),
        .testTarget(
            name: "PostgresTests",
            dependencies: ["Postgres", "TestSupport"]
        ),
        .testTarget(
            name: "TemporalKitTests",
            dependencies: ["TemporalKit", "Postgres", "TestSupport"]
        ),
        .testTarget(
            name: "ChangeStreamTests",
            dependencies: ["ChangeStream", "Postgres", "TemporalKit", "TestSupport"],
            // Read from the source tree by the tests themselves.
            exclude: ["Fixtures", "Scripts"]
        ),
        .testTarget(
            name: "TemporalCLITests",
            dependencies: ["temporal", "TestSupport", "Postgres", "TemporalKit", "TemporalMCP"]
        ),
    ]
)
