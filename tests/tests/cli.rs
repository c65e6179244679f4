//! The `fleetdeck` command line: user administration, bad input, a refused data dir.

use fleetdeck_tests::run_fleetdeck;

#[tokio::test]
async fn users_are_managed_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let dir = data.path().to_str().unwrap();

    let (code, out, err) = run_fleetdeck(
        &[
            "user",
            "add",
            "olga",
            "--role",
            "operator",
            "--data-dir",
            dir,
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.starts_with("added olga (operator)\npassword: "),
        "{out}"
    );

    let (code, out, err) = run_fleetdeck(
        &[
            "user",
            "add",
            "adam",
            "--role",
            "admin",
            "--password-stdin",
            "--data-dir",
            dir,
        ],
        Some("a chosen password\n"),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "added adam (admin)\n");

    let (code, out, _) = run_fleetdeck(
        &["user", "set-role", "olga", "viewer", "--data-dir", dir],
        None,
    )
    .await;
    assert_eq!(code, 0);
    assert_eq!(out, "olga: operator -> viewer\n");

    let (code, out, _) =
        run_fleetdeck(&["user", "reset-password", "olga", "--data-dir", dir], None).await;
    assert_eq!(code, 0);
    assert!(out.contains("password: "), "{out}");

    let (code, out, _) = run_fleetdeck(&["user", "list", "--data-dir", dir], None).await;
    assert_eq!(code, 0);
    assert_eq!(out, "adam\tadmin\nolga\tviewer\n");

    // Refusals: one clear line, exit status 1, nothing changed.
    let (code, _, err) = run_fleetdeck(&["user", "add", "olga", "--data-dir", dir], None).await;
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "fleetdeck: user olga already exists");
    let (code, _, err) = run_fleetdeck(
        &["user", "set-role", "adam", "viewer", "--data-dir", dir],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("adam is the last admin"), "{err}");
    let (code, _, err) = run_fleetdeck(&["user", "add", "Bad Name", "--data-dir", dir], None).await;
    assert_eq!(code, 1);
    assert!(err.contains("invalid user name"), "{err}");
    let (code, _, err) = run_fleetdeck(
        &[
            "user",
            "add",
            "shorty",
            "--password-stdin",
            "--data-dir",
            dir,
        ],
        Some("short\n"),
    )
    .await;
    assert_eq!(code, 1);
    assert!(err.contains("at least 12 characters"), "{err}");
    let (code, _, err) = run_fleetdeck(
        &["user", "set-role", "nobody", "admin", "--data-dir", dir],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert_eq!(err.trim(), "fleetdeck: user nobody not found");

    let (_, out, _) = run_fleetdeck(&["user", "list", "--data-dir", dir], None).await;
    assert_eq!(out, "adam\tadmin\nolga\tviewer\n");
}

#[tokio::test]
async fn unknown_arguments_get_the_usage_error() {
    let (code, _, err) = run_fleetdeck(&["serve", "--frobnicate"], None).await;
    assert_eq!(code, 2);
    assert!(err.contains("unexpected argument '--frobnicate'"), "{err}");
    assert!(err.contains("Usage:"), "{err}");
    let (code, _, err) = run_fleetdeck(&["user", "set-role", "x", "root"], None).await;
    assert_eq!(code, 2);
    assert!(err.contains("unknown role \"root\""), "{err}");
}

#[tokio::test]
async fn help_documents_every_setting_and_its_environment_twin() {
    let (code, out, _) = run_fleetdeck(&["serve", "--help"], None).await;
    assert_eq!(code, 0);
    for (flag, env) in [
        ("--addr", "LEPTOS_SITE_ADDR"),
        ("--data-dir", "FLEETDECK_DATA_DIR"),
        ("--database-url", "DATABASE_URL"),
        ("--admin-password", "FLEETDECK_ADMIN_PASSWORD"),
        ("--log-format", "FLEETDECK_LOG_FORMAT"),
        ("--site-root", "LEPTOS_SITE_ROOT"),
    ] {
        assert!(
            out.contains(flag) && out.contains(env),
            "{flag} / {env} missing from:\n{out}"
        );
    }
}

#[tokio::test]
async fn a_corrupt_database_stops_the_server_with_one_line_and_changes_nothing() {
    let data = tempfile::tempdir().unwrap();
    let db = data.path().join("fleetdeck.db");
    let garbage = b"definitely not a sqlite database, just bytes".repeat(10);
    std::fs::write(&db, &garbage).unwrap();
    let (code, _, err) = run_fleetdeck(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            data.path().to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("is not a SQLite database"), "{err}");
    assert_eq!(std::fs::read(&db).unwrap(), garbage);
    assert_eq!(
        std::fs::read_dir(data.path()).unwrap().count(),
        1,
        "no new files"
    );
}

#[tokio::test]
async fn a_data_dir_that_cannot_be_used_stops_the_server() {
    let parent = tempfile::tempdir().unwrap();
    let file = parent.path().join("data");
    std::fs::write(&file, b"a file, not a directory").unwrap();
    let (code, _, err) = run_fleetdeck(
        &[
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data-dir",
            file.to_str().unwrap(),
        ],
        None,
    )
    .await;
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(err.contains("exists but is not a directory"), "{err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"a file, not a directory");
}

#[tokio::test]
async fn a_bad_fleet_file_stops_the_server_naming_file_line_and_key() {
    let data = tempfile::tempdir().unwrap();
    let fleet = data.path().join("fleet.toml");
    std::fs::write(
        &fleet,
        "[[server]]\nname = \"search\"\nstrategie = \"random\"\n",
    )
    .unwrap();
    let data_dir = data.path().join("data");
    let args = [
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--fleet",
        fleet.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    let (code, _, err) = run_fleetdeck(&args, None).await;
    assert_eq!(code, 1);
    assert_eq!(err.lines().count(), 1, "one line: {err}");
    assert!(
        err.contains("fleet.toml:3: unknown field `strategie`"),
        "{err}"
    );
    assert!(!data_dir.exists(), "nothing was created");

    let missing = data.path().join("nowhere.toml");
    let args = [
        "serve",
        "--addr",
        "127.0.0.1:0",
        "--fleet",
        missing.to_str().unwrap(),
        "--data-dir",
        data_dir.to_str().unwrap(),
    ];
    let (code, _, err) = run_fleetdeck(&args, None).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot read the fleet file") && err.contains("No such file"),
        "{err}"
    );
}
