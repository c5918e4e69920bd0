//! The farm's fixed cast: projects, worker pools, kinds of builder and the builder table.

use std::collections::BTreeMap;

use rand::Rng;
use rand_pcg::Pcg64Mcg;

use super::FLAKY;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Project {
    Core,
    Web,
    Firmware,
}

impl Project {
    pub(super) const ALL: [Project; 3] = [Project::Core, Project::Web, Project::Firmware];

    pub(super) fn name(self) -> &'static str {
        match self {
            Project::Core => "core",
            Project::Web => "web",
            Project::Firmware => "firmware",
        }
    }

    /// Index into [`SOURCES`].
    pub(super) fn source(self) -> usize {
        match self {
            Project::Core | Project::Web => 0,
            Project::Firmware => 1,
        }
    }

    /// Share of pushes. Firmware pushes are rarer: each one requests long image builds.
    pub(super) fn push_share(self) -> f64 {
        match self {
            Project::Core => 0.5,
            Project::Web => 0.42,
            Project::Firmware => 0.08,
        }
    }

    /// The current and the previous release branch.
    pub(super) fn releases(self) -> [&'static str; 2] {
        match self {
            Project::Core => ["release/4.2", "release/4.1"],
            Project::Web => ["release/2026.10", "release/2026.09"],
            Project::Firmware => ["release/walnascar", "release/scarthgap"],
        }
    }

    /// Topics of short-lived feature branches.
    pub(super) fn topics(self) -> &'static [&'static str] {
        match self {
            Project::Core => &[
                "async-io",
                "simd-hash",
                "parser-rewrite",
                "lto",
                "arena-alloc",
                "msvc-warnings",
                "zstd-1.6",
                "plugin-api",
                "faster-link",
                "arm64-atomics",
            ],
            Project::Web => &[
                "dark-mode",
                "login-timeout",
                "i18n",
                "bundle-split",
                "a11y-forms",
                "react-19",
                "csp-headers",
                "search-page",
                "flaky-e2e",
                "vite-7",
            ],
            Project::Firmware => &[
                "ota-delta",
                "kernel-6.12",
                "secure-boot",
                "wifi-fw",
                "tiny-init",
                "rauc-bundle",
                "openssl-3.5",
                "systemd-258",
                "u-boot-2026.07",
                "sbom",
            ],
        }
    }
}

/// Worker pools, one per platform family; firmware images build on big Yocto machines.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Pool {
    Linux,
    Win,
    Mac,
    Yocto,
}

impl Pool {
    pub(super) const ALL: [Pool; 4] = [Pool::Linux, Pool::Win, Pool::Mac, Pool::Yocto];

    pub(super) fn name(self) -> &'static str {
        match self {
            Pool::Linux => "linux",
            Pool::Win => "win",
            Pool::Mac => "mac",
            Pool::Yocto => "yocto",
        }
    }

    /// Least digits in worker numbers (`linux-worker-017`, `win-worker-04`).
    pub(super) fn digits(self) -> usize {
        match self {
            Pool::Linux => 3,
            Pool::Win | Pool::Mac | Pool::Yocto => 2,
        }
    }
}

/// What a builder does, which decides its steps, how often it fails and whether it reports
/// [`BUILD_SIZE_METRIC`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Kind {
    Build,
    Test,
    Lint,
    Docs,
    E2e,
    Image,
    TestImage,
    Sdk,
}

impl Kind {
    /// Step names and their typical share of the run. At least 4 steps, so a job that stops
    /// in its main step (index 2 or later) still has 3.
    pub(super) fn steps(self) -> &'static [(&'static str, f64)] {
        match self {
            Kind::Build => &[
                ("checkout", 0.04),
                ("configure", 0.06),
                ("compile", 0.7),
                ("package", 0.1),
                ("upload", 0.1),
            ],
            Kind::Test => {
                &[("checkout", 0.05), ("fetch-artifacts", 0.1), ("test", 0.77), ("collect-results", 0.08)]
            }
            Kind::Lint => &[("checkout", 0.15), ("install-tools", 0.25), ("lint", 0.5), ("report", 0.1)],
            Kind::Docs => {
                &[("checkout", 0.1), ("install-tools", 0.2), ("build-docs", 0.55), ("publish", 0.15)]
            }
            Kind::E2e => {
                &[("checkout", 0.05), ("install-deps", 0.15), ("e2e-tests", 0.7), ("upload-report", 0.1)]
            }
            Kind::Image => {
                &[("checkout", 0.02), ("setup-build-env", 0.03), ("bitbake", 0.85), ("deploy", 0.1)]
            }
            Kind::TestImage => {
                &[("checkout", 0.02), ("setup-build-env", 0.03), ("bitbake", 0.45), ("testimage", 0.5)]
            }
            Kind::Sdk => {
                &[("checkout", 0.02), ("setup-build-env", 0.03), ("populate-sdk", 0.8), ("deploy", 0.15)]
            }
        }
    }

    /// The step where failures and warnings happen.
    pub(super) fn main_step(self) -> usize {
        match self {
            Kind::TestImage => 3,
            _ => 2,
        }
    }

    pub(super) fn failure_rate(self) -> f64 {
        match self {
            Kind::Docs => 0.015,
            Kind::Build | Kind::Image | Kind::Sdk => 0.025,
            Kind::Lint => 0.03,
            Kind::Test => 0.035,
            Kind::E2e | Kind::TestImage => 0.045,
        }
    }

    pub(super) fn warnings_rate(self) -> f64 {
        match self {
            Kind::Build | Kind::Lint => 0.07,
            Kind::Image | Kind::Sdk => 0.05,
            Kind::Test | Kind::Docs | Kind::E2e | Kind::TestImage => 0.02,
        }
    }

    /// Typical size of what the builder produces, in MB, if it reports one.
    pub(super) fn size_mb(self) -> Option<(f64, f64)> {
        match self {
            Kind::Build => Some((50.0, 140.0)),
            Kind::Image => Some((120.0, 240.0)),
            Kind::Sdk => Some((220.0, 260.0)),
            _ => None,
        }
    }
}

/// Builders of one project on one platform (or, for firmware, one Yocto `MACHINE`).
pub(super) struct Group {
    pub(super) project: Project,
    pub(super) target: &'static str,
    pub(super) pool: Pool,
    /// Name suffix, kind, typical run time in minutes.
    pub(super) builders: &'static [(&'static str, Kind, f64)],
}

/// The farm's builders. Run times are short on the whole: with ~6 700 jobs a day the
/// average job must take about four minutes for ~60 workers to keep up.
pub(super) const GROUPS: &[Group] = {
    use Kind::*;
    use Pool::*;
    use Project::*;
    &[
        Group {
            project: Core,
            target: "linux64",
            pool: Linux,
            builders: &[
                ("build", Build, 4.0),
                ("debug-build", Build, 3.0),
                ("test", Test, 3.0),
                ("debug-test", Test, 4.0),
                ("asan-test", Test, 5.5),
                ("tsan-test", Test, 5.5),
                ("coverage-test", Test, 4.0),
                ("lint", Lint, 1.0),
                ("docs", Docs, 1.5),
            ],
        },
        Group {
            project: Core,
            target: "win64",
            pool: Win,
            builders: &[("build", Build, 5.0), ("debug-build", Build, 4.0), ("test", Test, 3.5)],
        },
        Group {
            project: Core,
            target: "mac64",
            pool: Mac,
            builders: &[("build", Build, 3.0), ("test", Test, 3.0)],
        },
        Group {
            project: Core,
            target: "mac-arm64",
            pool: Mac,
            builders: &[("build", Build, 2.0), ("test", Test, 2.0)],
        },
        Group {
            project: Web,
            target: "linux64",
            pool: Linux,
            builders: &[
                ("build", Build, 2.5),
                ("test", Test, 2.0),
                ("lint", Lint, 1.0),
                ("e2e-chrome", E2e, 4.0),
                ("e2e-firefox", E2e, 5.0),
                ("storybook", Docs, 1.0),
                ("a11y-test", Test, 2.0),
            ],
        },
        Group {
            project: Web,
            target: "win64",
            pool: Win,
            builders: &[("build", Build, 2.5), ("e2e-edge", E2e, 5.0)],
        },
        Group { project: Web, target: "mac-arm64", pool: Mac, builders: &[("e2e-safari", E2e, 5.0)] },
        // Image builds reuse the shared state cache, so most are short; booting the images
        // and running their tests is what takes long.
        Group {
            project: Firmware,
            target: "qemux86-64",
            pool: Yocto,
            builders: &[
                ("image", Image, 9.5),
                ("tiny-image", Image, 5.0),
                ("debug-image", Image, 11.0),
                ("testimage", TestImage, 36.0),
                ("sdk", Sdk, 14.5),
            ],
        },
        Group {
            project: Firmware,
            target: "qemuarm64",
            pool: Yocto,
            builders: &[("image", Image, 11.0), ("testimage", TestImage, 44.0), ("sdk", Sdk, 16.0)],
        },
        Group { project: Firmware, target: "qemuriscv64", pool: Yocto, builders: &[("image", Image, 13.0)] },
        Group {
            project: Firmware,
            target: "raspberrypi4-64",
            pool: Yocto,
            builders: &[("image", Image, 10.5)],
        },
        Group {
            project: Firmware,
            target: "beaglebone-yocto",
            pool: Yocto,
            builders: &[("image", Image, 9.0)],
        },
        Group { project: Firmware, target: "genericx86-64", pool: Yocto, builders: &[("image", Image, 9.5)] },
    ]
};

pub(super) struct Builder {
    pub(super) project: Project,
    pub(super) pool: Pool,
    pub(super) kind: Kind,
    pub(super) base_s: f64,
    pub(super) flaky: bool,
    /// Size of what it builds at the start of the period, in bytes.
    pub(super) size_bytes: Option<f64>,
    pub(super) tags: BTreeMap<String, String>,
}

impl Builder {
    pub(super) fn new(
        name: &str,
        group: &Group,
        suffix: &str,
        kind: Kind,
        minutes: f64,
        rng: &mut Pcg64Mcg,
    ) -> Builder {
        let mut tags = BTreeMap::new();
        let build_type = if suffix.contains("debug") { "debug" } else { "opt" };
        tags.insert("build_type".to_owned(), build_type.to_owned());
        if group.project == Project::Firmware {
            let distro = if suffix.contains("tiny") { "poky-tiny" } else { "poky" };
            tags.insert("platform".to_owned(), "linux64".to_owned());
            tags.insert("MACHINE".to_owned(), group.target.to_owned());
            tags.insert("DISTRO".to_owned(), distro.to_owned());
        } else {
            tags.insert("platform".to_owned(), group.target.to_owned());
        }
        let size_bytes = kind.size_mb().map(|(lo, hi)| (lo + (hi - lo) * rng.random::<f64>()) * 1e6);
        Builder {
            project: group.project,
            pool: group.pool,
            kind,
            base_s: minutes * 60.0,
            flaky: FLAKY.contains(&name),
            size_bytes,
            tags,
        }
    }
}
