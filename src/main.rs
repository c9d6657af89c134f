use countersign::accounts::{self, Role};
use countersign::server::cli::{
    AgentCommand, AuditCommand, Cli, Command, ServeArgs, UserAddArgs, UserCommand,
};
use countersign::server::config::{self, Config, DatabaseTarget};
use countersign::server::{demo, http, now_ms, Db};
use std::io::{IsTerminal, Read};
use std::process::ExitCode;
use std::time::Duration;

fn main() -> ExitCode {
    configure_malloc();
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("the async runtime starts")
        .block_on(async_main())
}

/// At most two malloc arenas (glibc's default allows eight per core, one per allocating
/// thread): measured under the inbox load at 1,000,000 requests, the server's peak resident
/// memory went from 214 MB to 142 MB with the same throughput.
///
/// The mmap threshold is pinned at glibc's initial 128 KiB. Left dynamic, it rises to the size
/// of the largest mmapped block freed so far; the first sign-in frees Argon2's 19 MiB of working
/// memory, so from then on every allocation under 19 MiB came from the arenas and much of it
/// stayed resident after being freed. Must run before any thread starts. See BENCHMARKS.md,
/// "Inbox page under load".
fn configure_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; it is called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

async fn async_main() -> ExitCode {
    let cli = Cli::parse_with_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "countersign=info,warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // One line naming the problem; the chain of causes joined with ": ".
            let message = format!("{e:#}").replace('\n', " ");
            eprintln!("countersign: error: {message}");
            ExitCode::FAILURE
        }
    }
}

fn audit_key_path(cli: &Cli) -> std::path::PathBuf {
    cli.audit_key_file
        .clone()
        .unwrap_or_else(|| cli.data_dir.join("audit-signing.key"))
}

fn audit_key(cli: &Cli) -> anyhow::Result<countersign::audit::signing::AuditKey> {
    countersign::audit::signing::AuditKey::load_or_create(&audit_key_path(cli))
}

async fn open_database(cli: &Cli) -> anyhow::Result<Db> {
    let target = config::database_target(cli.database_url.as_deref(), &cli.data_dir)?;
    config::prepare_data_dir(&cli.data_dir)?;
    if let DatabaseTarget::Sqlite { path } = &target {
        config::prepare_sqlite_path(path)?;
    }
    let db = Db::connect(&target).await?;
    db.migrate().await?;
    Ok(db)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli
        .command
        .as_ref()
        .expect("parse_with_default always sets a command")
    {
        Command::Migrate => {
            let db = open_database(&cli).await?;
            println!("migrations applied ({})", db.engine());
            db.close().await;
        }
        Command::Demo(args) => {
            let db = open_database(&cli).await?;
            match demo::load(&db, args, now_ms()).await? {
                Some(s) => println!(
                    "demo data loaded ({}): {} action requests, {} decisions, {} open in the inbox",
                    db.engine(),
                    s.requests,
                    s.decisions,
                    s.pending
                ),
                None => println!(
                    "the database already holds action requests; left it alone (use --force to add more)"
                ),
            }
            db.close().await;
        }
        Command::User(UserCommand::Add(args)) => {
            let db = open_database(&cli).await?;
            add_user(&db, args).await?;
            db.close().await;
        }
        Command::Agent(command) => {
            let db = open_database(&cli).await?;
            agent_command(&db, command).await?;
            db.close().await;
        }
        Command::Audit(AuditCommand::Verify) => {
            let db = open_database(&cli).await?;
            let key = audit_key(&cli)?;
            let verified = countersign::audit::verify::verify_trail(&db, &key.public_hex()).await?;
            // Reading the trail is itself recorded.
            let mut tx = db.begin_write().await?;
            countersign::audit::repo::append(
                &mut tx,
                &countersign::audit::repo::Actor::System,
                "audit_verified",
                None,
                serde_json::json!({"events": verified.events, "checkpoints": verified.checkpoints, "head_seq": verified.head_seq, "head_hash": verified.head_hash, "via": "command line"}),
                now_ms(),
            )
            .await?;
            tx.commit().await?;
            println!(
                "audit trail verified: {} events, {} signed checkpoints, head {} {}",
                verified.events, verified.checkpoints, verified.head_seq, verified.head_hash
            );
            db.close().await;
        }
        Command::Audit(AuditCommand::Checkpoint) => {
            let db = open_database(&cli).await?;
            let key = audit_key(&cli)?;
            match countersign::audit::checkpoints::checkpoint(&db, &key, None, now_ms()).await? {
                Some(cp) => println!("signed checkpoint at event {} {}", cp.seq, cp.hash),
                None => println!("nothing to sign: the head is already checkpointed"),
            }
            db.close().await;
        }
        Command::Audit(AuditCommand::PublicKey) => {
            config::prepare_data_dir(&cli.data_dir)?;
            println!("{}", audit_key(&cli)?.public_hex());
        }
        Command::Audit(AuditCommand::VerifyBundle { file, public_key }) => {
            let report =
                countersign::audit::bundle::verify_bundle_file(file, public_key.as_deref())?;
            print!("{report}");
        }
        Command::Serve(args) => serve(&cli, args).await?,
    }
    Ok(())
}

async fn serve(cli: &Cli, args: &ServeArgs) -> anyhow::Result<()> {
    config::check_insecure_cookies(args.insecure_cookies, &args.bind)?;
    let mut config = Config::new(
        config::database_target(cli.database_url.as_deref(), &cli.data_dir)?,
        cli.data_dir.clone(),
        args.bind,
        args.site_root.clone(),
    );
    config.session.secure_cookie = !args.insecure_cookies;
    config.session.idle_timeout = Duration::from_secs(args.idle_timeout_minutes * 60);
    config.session.absolute_timeout = Duration::from_secs(args.absolute_timeout_hours * 3600);
    config.trusted_proxies = args.trusted_proxies.clone();
    config.allow_private_callbacks = args.allow_private_callbacks;
    config.metrics_token = args
        .metrics_token
        .as_deref()
        .filter(|t| !t.is_empty())
        .map(countersign::server::config::BearerToken::new)
        .transpose()
        .map_err(|e| anyhow::anyhow!("COUNTERSIGN_METRICS_TOKEN (--metrics-token) {e}"))?;
    config.audit_key_file = audit_key_path(cli);
    config.audit_retention_days = args.audit_retention_days;
    config.checkpoint_every_events = args.checkpoint_every_events;
    if let Some(url) = &args.public_url {
        config.public_url = url.trim_end_matches('/').to_owned();
    }
    config.smtp_url = args.smtp_url.clone();
    config.smtp_from = args.smtp_from.clone();
    config.digest_interval = Duration::from_secs(args.digest_minutes * 60);
    let db = open_database(cli).await?;
    let listener = http::bind(&config).await?;
    let addr = listener.local_addr()?;
    let state = countersign::server::AppState::new(db.clone(), config)?;
    let app = http::router(state.clone());
    let jobs = countersign::server::jobs::spawn(state.clone());
    println!("Countersign is running at http://{addr}/ ({})", db.engine());
    if !accounts::repo::admin_exists(&db).await? {
        let token = http::new_setup_link(&db).await?;
        println!(
            "No admin exists yet. Create one within 24 hours at: http://{addr}/setup?token={token}"
        );
    }
    let closing = state.clone();
    http::serve(listener, app, async move {
        http::shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight requests and jobs");
        closing.begin_shutdown();
    })
    .await?;
    // The job loop stops after its current item (a webhook in flight finishes and its lease is
    // cleared); one stuck past its HTTP timeout is abandoned, and its lease simply expires.
    let abort = jobs.abort_handle();
    if tokio::time::timeout(Duration::from_secs(15), jobs)
        .await
        .is_err()
    {
        abort.abort();
    }
    db.close().await;
    Ok(())
}

fn read_password(email: &str) -> anyhow::Result<String> {
    let password = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password(format!("Password for {email}: "))?;
        let second = rpassword::prompt_password("Repeat the password: ")?;
        if first != second {
            anyhow::bail!("the two passwords differ");
        }
        first
    } else {
        let mut input = String::new();
        std::io::stdin().take(4096).read_to_string(&mut input)?;
        input.lines().next().unwrap_or_default().to_owned()
    };
    accounts::password_policy::check_new_password(&password, email)
        .map_err(|m| anyhow::anyhow!("password: {m}"))?;
    Ok(password)
}

async fn add_user(db: &Db, args: &UserAddArgs) -> anyhow::Result<()> {
    let email = args.email.trim();
    if !email.contains('@') || email.len() > 254 {
        anyhow::bail!("{email:?} is not an email address");
    }
    let mut roles: Vec<Role> = args.roles.iter().filter_map(|r| Role::parse(r)).collect();
    if args.admin && !roles.contains(&Role::Admin) {
        roles.push(Role::Admin);
    }
    if roles.is_empty() {
        anyhow::bail!("give the user at least one role: --admin or --role reviewer|senior_reviewer|admin|auditor");
    }
    if accounts::repo::email_taken(db, email).await? {
        anyhow::bail!("a user with email {email} already exists");
    }
    let name = args
        .name
        .clone()
        .unwrap_or_else(|| email.split('@').next().unwrap_or(email).to_owned());
    let password = read_password(email)?;
    let id = countersign::server::ids::new_id("usr");
    let hash = accounts::password::hash_blocking(password).await;
    let now = now_ms();
    let mut tx = db.begin_write().await?;
    accounts::repo::insert_user(&mut tx, &id, email, &name, &roles, now).await?;
    accounts::repo::set_password_hash(&mut tx, &id, &hash).await?;
    let role_names: Vec<&str> = roles.iter().map(|r| r.as_str()).collect();
    countersign::audit::repo::append(
        &mut tx,
        &countersign::audit::repo::Actor::System,
        "user_created",
        None,
        serde_json::json!({"user_id": id, "email": email, "roles": role_names, "via": "command line"}),
        now,
    )
    .await?;
    tx.commit().await?;
    println!(
        "created {email} ({}) with roles {}",
        name,
        role_names.join(", ")
    );
    Ok(())
}

async fn agent_command(db: &Db, command: &AgentCommand) -> anyhow::Result<()> {
    use countersign::api::tokens;
    match command {
        AgentCommand::Add { name, description } => {
            let created = tokens::create_agent(
                db,
                name,
                description,
                &countersign::audit::repo::Actor::System,
            )
            .await?;
            println!("agent {name} created ({})", created.id);
            println!("API token (shown once):      {}", created.token);
            println!("webhook secret (shown once): {}", created.webhook_secret);
        }
        AgentCommand::Token {
            name,
            revoke_others,
        } => {
            let token = tokens::issue_token(
                db,
                name,
                *revoke_others,
                &countersign::audit::repo::Actor::System,
            )
            .await?;
            if *revoke_others {
                println!("earlier tokens of {name} are revoked");
            }
            println!("API token for {name} (shown once): {token}");
        }
        AgentCommand::Revoke { name } => {
            let n =
                tokens::revoke_tokens(db, name, &countersign::audit::repo::Actor::System).await?;
            println!("revoked {n} token(s) of {name}");
        }
        AgentCommand::Secret { name } => {
            let secret =
                tokens::rotate_webhook_secret(db, name, &countersign::audit::repo::Actor::System)
                    .await?;
            println!("webhook secret for {name} (shown once): {secret}");
        }
    }
    Ok(())
}
