//! Key ring behaviour: stages, storage, reloads.

use std::fs;

use super::*;

/// Mode 0600, as `keys generate` writes it.
fn private(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o600)).unwrap();
}

#[test]
fn a_key_file_others_can_read_is_refused_as_ssh_does() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    drop(KeyRing::open(&path, SigningAlgorithm::ES256, true).unwrap());
    for mode in [0o644, 0o640, 0o604, 0o660] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let err = KeyRing::open(&path, SigningAlgorithm::ES256, false).unwrap_err();
        assert!(matches!(err, KeyError::Exposed { .. }), "{mode:o}: {err}");
        assert!(err.to_string().contains("chmod 600"), "{err}");
    }
    for mode in [0o600, 0o400] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        KeyRing::open(&path, SigningAlgorithm::ES256, false).unwrap();
    }
}

/// A Kubernetes/Docker secret mount: root-owned, readable by the service's
/// (non-root) group only. Needs root to chown, as the suite runs.
#[cfg(unix)]
#[test]
fn a_root_owned_secret_readable_by_a_service_group_is_accepted() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    drop(KeyRing::open(&path, SigningAlgorithm::ES256, true).unwrap());
    std::os::unix::fs::chown(&path, Some(0), Some(10001))
        .expect("this test needs root (the test command runs as root) to chown a file");
    for mode in [0o440, 0o640] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        KeyRing::open(&path, SigningAlgorithm::ES256, false).unwrap();
    }
    for mode in [0o444, 0o460, 0o664, 0o604] {
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        let err = KeyRing::open(&path, SigningAlgorithm::ES256, false).unwrap_err();
        assert!(matches!(err, KeyError::Exposed { .. }), "{mode:o}: {err}");
    }
}

fn kids(ring: &KeyRing) -> Vec<(Stage, String)> {
    ring.keys().into_iter().map(|k| (k.stage, k.kid)).collect()
}

fn kid_of(ring: &KeyRing, stage: Stage) -> Option<String> {
    ring.keys()
        .into_iter()
        .find(|k| k.stage == stage)
        .map(|k| k.kid)
}

fn jwks_kids(ring: &KeyRing) -> Vec<String> {
    ring.jwks()
        .keys
        .iter()
        .map(|k| k.common.key_id.clone().unwrap())
        .collect()
}

#[test]
fn first_run_generates_current_and_next_and_writes_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state/keys.json");
    let (ring, generated) = KeyRing::open(&path, SigningAlgorithm::ES256, true).unwrap();
    assert!(generated);
    assert!(path.exists());
    let stages: Vec<Stage> = ring.keys().iter().map(|k| k.stage).collect();
    assert_eq!(stages, [Stage::Current, Stage::Next]);
    assert_eq!(
        ring.signing_key().kid(),
        kid_of(&ring, Stage::Current).unwrap()
    );

    let (again, generated) = KeyRing::open(&path, SigningAlgorithm::ES256, true).unwrap();
    assert!(!generated, "second start loads the file");
    assert_eq!(kids(&again), kids(&ring));
}

#[cfg(unix)]
#[test]
fn file_is_private_and_its_new_directory_too() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh/keys.json");
    let (ring, _) = KeyRing::open(&path, SigningAlgorithm::EdDSA, true).unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(&dir.path().join("fresh")), 0o700);
    ring.rotate().unwrap();
    assert_eq!(mode(&path), 0o600, "a rewrite keeps the file private");
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("fresh")).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "no temp files left behind");
}

#[test]
fn missing_file_without_generation_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err =
        KeyRing::open(dir.path().join("keys.json"), SigningAlgorithm::RS256, false).unwrap_err();
    assert!(matches!(err, KeyError::Missing { .. }), "{err}");
}

#[test]
fn rotate_moves_every_stage_and_retire_drops_previous() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, _) =
        KeyRing::open(dir.path().join("keys.json"), SigningAlgorithm::EdDSA, true).unwrap();
    let current = kid_of(&ring, Stage::Current).unwrap();
    let next = kid_of(&ring, Stage::Next).unwrap();
    assert_eq!(ring.generation(), 1);

    ring.rotate().unwrap();
    assert_eq!(kid_of(&ring, Stage::Previous).unwrap(), current);
    assert_eq!(kid_of(&ring, Stage::Current).unwrap(), next);
    assert_eq!(ring.signing_key().kid(), next);
    let new_next = kid_of(&ring, Stage::Next).unwrap();
    assert!(new_next != current && new_next != next);
    assert_eq!(ring.generation(), 2);
    assert_eq!(
        jwks_kids(&ring),
        [next.clone(), new_next.clone(), current.clone()]
    );

    assert!(ring.retire().unwrap());
    assert_eq!(kid_of(&ring, Stage::Previous), None);
    assert_eq!(jwks_kids(&ring), [next, new_next]);
    assert_eq!(ring.generation(), 3);

    assert!(!ring.retire().unwrap(), "nothing left to retire");
    assert_eq!(ring.generation(), 3, "no change, no new generation");
}

#[test]
fn jwks_entries_carry_kid_alg_and_use() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, _) =
        KeyRing::open(dir.path().join("keys.json"), SigningAlgorithm::RS256, true).unwrap();
    let json = serde_json::to_value(&*ring.jwks()).unwrap();
    for key in json["keys"].as_array().unwrap() {
        assert_eq!(key["alg"], "RS256");
        assert_eq!(key["use"], "sig");
        assert_eq!(key["kty"], "RSA");
        assert!(key["kid"].as_str().is_some_and(|k| k.len() == 43));
        assert!(
            key.get("d").is_none() && key.get("p").is_none(),
            "no private members"
        );
    }
}

#[test]
fn another_process_rotating_is_picked_up_by_reload() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (service, _) = KeyRing::open(&path, SigningAlgorithm::ES256, true).unwrap();
    assert!(!service.reload().unwrap(), "unchanged file");

    // What `session-bridge keys rotate` does: its own ring on the same file.
    let (operator, _) = KeyRing::open(&path, SigningAlgorithm::ES256, false).unwrap();
    operator.rotate().unwrap();

    assert!(service.reload().unwrap());
    assert_eq!(kids(&service), kids(&operator));
    assert_eq!(service.generation(), 2);
    assert!(!service.reload().unwrap());
    assert_eq!(service.generation(), 2);
}

#[test]
fn rotating_builds_on_a_file_changed_by_someone_else() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (service, _) = KeyRing::open(&path, SigningAlgorithm::ES256, true).unwrap();
    let (operator, _) = KeyRing::open(&path, SigningAlgorithm::ES256, false).unwrap();
    operator.rotate().unwrap();
    let operators_current = kid_of(&operator, Stage::Current).unwrap();
    service.rotate().unwrap();
    assert_eq!(
        kid_of(&service, Stage::Previous).unwrap(),
        operators_current
    );
}

#[test]
fn corrupt_file_is_a_clear_error_and_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    fs::write(&path, b"{ not json").unwrap();
    private(&path);
    let err = KeyRing::open(&path, SigningAlgorithm::RS256, true).unwrap_err();
    assert!(matches!(err, KeyError::Malformed { .. }), "{err}");
    assert!(err.to_string().contains("keys.json"), "{err}");
    assert_eq!(fs::read(&path).unwrap(), b"{ not json");
}

#[test]
fn bad_file_on_reload_keeps_the_keys_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (ring, _) = KeyRing::open(&path, SigningAlgorithm::EdDSA, true).unwrap();
    let before = kids(&ring);
    fs::write(&path, b"[]").unwrap();
    assert!(ring.reload().is_err());
    fs::remove_file(&path).unwrap();
    assert!(matches!(ring.reload(), Err(KeyError::Missing { .. })));
    assert_eq!(kids(&ring), before);
    assert_eq!(ring.generation(), 1);
}

#[test]
fn errors_about_key_values_never_quote_them() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (ring, _) = KeyRing::open(&path, SigningAlgorithm::EdDSA, true).unwrap();
    drop(ring);
    let text = fs::read_to_string(&path).unwrap();
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let secret = file["current"]["private_key_pkcs8"]
        .as_str()
        .unwrap()
        .to_owned();

    // The secret moved into a field of another type.
    file["version"] = serde_json::Value::String(secret.clone());
    fs::write(&path, file.to_string()).unwrap();
    let err = KeyRing::open(&path, SigningAlgorithm::EdDSA, false).unwrap_err();
    assert!(!format!("{err} {err:?}").contains(&secret[..12]), "{err}");

    // A damaged key.
    file["version"] = 1.into();
    file["current"]["private_key_pkcs8"] = format!("{}AAAA", &secret[..secret.len() - 8]).into();
    fs::write(&path, file.to_string()).unwrap();
    let err = KeyRing::open(&path, SigningAlgorithm::EdDSA, false).unwrap_err();
    assert!(
        matches!(
            err,
            KeyError::InvalidKey {
                stage: Stage::Current,
                ..
            }
        ),
        "{err}"
    );
    assert!(!format!("{err} {err:?}").contains(&secret[..12]), "{err}");
}

#[test]
fn wrong_kid_in_file_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    KeyRing::open(&path, SigningAlgorithm::ES256, true).unwrap();
    let mut file: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    file["next"]["kid"] = "someone-elses-kid".into();
    fs::write(&path, file.to_string()).unwrap();
    let err = KeyRing::open(&path, SigningAlgorithm::ES256, false).unwrap_err();
    assert!(
        matches!(
            err,
            KeyError::InvalidKey {
                stage: Stage::Next,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn accepts_pem_keys_without_kid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (ring, _) = KeyRing::open(&path, SigningAlgorithm::ES256, true).unwrap();
    let mut file: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let b64 = file["current"]["private_key_pkcs8"]
        .as_str()
        .unwrap()
        .to_owned();
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap())
        .collect();
    let pem = format!(
        "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
        lines.join("\n")
    );
    file["current"]["private_key_pkcs8"] = pem.into();
    file["current"].as_object_mut().unwrap().remove("kid");
    file.as_object_mut().unwrap().remove("next");
    fs::write(&path, file.to_string()).unwrap();
    let (loaded, _) = KeyRing::open(&path, SigningAlgorithm::ES256, false).unwrap();
    assert_eq!(loaded.signing_key().kid(), ring.signing_key().kid());
    assert_eq!(loaded.keys().len(), 1);
    loaded.rotate().unwrap();
    assert_eq!(
        loaded.keys().len(),
        3,
        "a ring without `next` still rotates"
    );
}

#[test]
fn generate_refuses_to_replace_keys_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let first = KeyRing::generate(&path, SigningAlgorithm::EdDSA, false).unwrap();
    let err = KeyRing::generate(&path, SigningAlgorithm::EdDSA, false).unwrap_err();
    assert!(matches!(err, KeyError::AlreadyExists { .. }), "{err}");
    let second = KeyRing::generate(&path, SigningAlgorithm::EdDSA, true).unwrap();
    assert_ne!(first.signing_key().kid(), second.signing_key().kid());
}

#[test]
fn keys_of_every_algorithm_survive_a_file_round_trip() {
    for alg in SigningAlgorithm::ALL {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.json");
        let (ring, _) = KeyRing::open(&path, alg, true).unwrap();
        ring.rotate().unwrap();
        let (loaded, _) = KeyRing::open(&path, alg, false).unwrap();
        assert_eq!(loaded.keys(), ring.keys(), "{alg}");
        assert_eq!(*loaded.jwks(), *ring.jwks(), "{alg}");
    }
}

#[test]
fn config_path_precedence() {
    let mut cfg = TokensConfig::default();
    let data = Path::new("/var/lib/sb");
    // The environment variable is not set in unit tests (nothing here sets it).
    if std::env::var_os(KEYS_FILE_ENV).is_none() {
        assert_eq!(KeyRing::path_for(&cfg, data), data.join("keys.json"));
        cfg.keys_file = Some(PathBuf::from("/run/secrets/keys.json"));
        assert_eq!(
            KeyRing::path_for(&cfg, data),
            Path::new("/run/secrets/keys.json")
        );
    }
}

#[test]
fn debug_of_the_ring_shows_kids_only() {
    let dir = tempfile::tempdir().unwrap();
    let (ring, _) =
        KeyRing::open(dir.path().join("keys.json"), SigningAlgorithm::EdDSA, true).unwrap();
    let printed = format!("{ring:?} {:?}", ring.signing_key());
    assert!(printed.contains(ring.signing_key().kid()));
    let text = fs::read_to_string(ring.path()).unwrap();
    let file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let secret = file["current"]["private_key_pkcs8"].as_str().unwrap();
    assert!(!printed.contains(&secret[..12]), "{printed}");
}

#[tokio::test]
async fn reload_task_picks_up_changes_and_stops_with_the_ring() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("keys.json");
    let (ring, _) = KeyRing::open(&path, SigningAlgorithm::EdDSA, true).unwrap();
    let ring = Arc::new(ring);
    // Below the one-second floor: must not spin (or panic on zero).
    let task = ring.spawn_reload_task(Duration::ZERO);
    let (operator, _) = KeyRing::open(&path, SigningAlgorithm::EdDSA, false).unwrap();
    operator.rotate().unwrap();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if ring.generation() == 2 {
            break;
        }
    }
    assert_eq!(kids(&ring), kids(&operator));
    drop(ring);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap();
}
