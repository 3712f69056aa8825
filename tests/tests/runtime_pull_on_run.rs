//! `run`/`create --pull missing|always|never` (issue 12, item 1): an image that is not in the
//! store is pulled first, with Docker's `Unable to find image` line, also through a
//! `registry-mirrors` mirror for Docker Hub names; stdout carries only the container's output.

use berth_tests::{ContainerEnv, Registry};

fn text(o: &std::process::Output) -> (i32, String, String) {
    (
        o.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn run_pulls_a_missing_image_and_honours_the_policy() {
    let env = ContainerEnv::new(&[]);
    let registry = Registry::start(&env.tmp.path().join("reg"), &[]);
    let image = format!("{}/team/bb:1", registry.addr);
    env.ok(&["tag", "bb:1", &image]);
    env.ok(&["push", &image]);
    env.ok(&["rmi", &image]);
    // never: not pulled.
    let (code, _, err) = text(&env.berth(&[
        "run",
        "--rm",
        "--pull",
        "never",
        "--network",
        "none",
        &image,
        "true",
    ]));
    assert_eq!(code, 125, "{err}");
    assert!(err.contains("No such image"), "{err}");
    // missing (the default): pulled, then run; stdout is the container's alone.
    let (code, out, err) =
        text(&env.berth(&["run", "--rm", "--network", "none", &image, "echo", "hi"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "hi\n");
    assert!(
        err.contains(&format!("Unable to find image '{image}' locally")),
        "{err}"
    );
    assert!(err.contains("Status: Downloaded newer image"), "{err}");
    // Present now: no pull.
    let (code, _, err) = text(&env.berth(&["run", "--rm", "--network", "none", &image, "true"]));
    assert_eq!(code, 0);
    assert!(!err.contains("Pulling from"), "{err}");
    // always: pulled although present (up to date), no `Unable to find` line.
    let (code, _, err) = text(&env.berth(&[
        "run",
        "--rm",
        "--pull",
        "always",
        "--network",
        "none",
        &image,
        "true",
    ]));
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("Image is up to date"), "{err}");
    assert!(!err.contains("Unable to find"), "{err}");
    // create pulls too and prints only the ID on stdout.
    env.ok(&["rmi", &image]);
    let (code, out, err) = text(&env.berth(&["create", "--network", "none", &image, "true"]));
    assert_eq!(code, 0, "{err}");
    assert_eq!(out.trim().len(), 64, "{out}");
    // An image nobody has: 125 with the pull's reason.
    let (code, _, err) = text(&env.berth(&[
        "run",
        "--rm",
        &format!("{}/team/nope:1", registry.addr),
        "true",
    ]));
    assert_eq!(code, 125);
    assert!(err.contains("Unable to find image"), "{err}");
    let bad = env.berth(&["run", "--pull", "sometimes", "bb:1", "true"]);
    assert_eq!(bad.status.code(), Some(2));
}

#[test]
fn run_pulls_docker_hub_names_through_a_mirror() {
    let env = ContainerEnv::new(&[]);
    let mirror = Registry::start(&env.tmp.path().join("mirror"), &[]);
    // Docker Hub content on a mirror lives under library/.
    let on_mirror = format!("{}/library/tiny:latest", mirror.addr);
    env.ok(&["tag", "bb:1", &on_mirror]);
    env.ok(&["push", &on_mirror]);
    let config = env.tmp.path().join("daemon.json");
    std::fs::write(
        &config,
        serde_json::json!({"registry-mirrors": [mirror.url()]}).to_string(),
    )
    .unwrap();
    let out = env.berth(&[
        "--config-file",
        config.to_str().unwrap(),
        "run",
        "--rm",
        "--network",
        "none",
        "tiny",
        "echo",
        "mirrored",
    ]);
    let (code, out, err) = text(&out);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "mirrored\n");
    assert!(
        err.contains("Unable to find image 'tiny:latest' locally"),
        "{err}"
    );
    assert!(
        err.contains(&format!("Pulled from mirror {}", mirror.url())),
        "{err}"
    );
}
