use countersign::server::cli::{Cli, Command, ServeArgs};
use countersign::server::config::{self, Config, DatabaseTarget};
use countersign::server::{demo, http, now_ms, Db};
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
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
        Command::Serve(ServeArgs { bind, site_root }) => {
            let config = Config {
                database: config::database_target(cli.database_url.as_deref(), &cli.data_dir)?,
                data_dir: cli.data_dir.clone(),
                bind: *bind,
                site_root: site_root.clone(),
            };
            let db = open_database(&cli).await?;
            let listener = http::bind(&config).await?;
            let addr = listener.local_addr()?;
            let app = http::router(db.clone(), config);
            println!("Countersign is running at http://{addr}/ ({})", db.engine());
            http::serve(listener, app, http::shutdown_signal()).await?;
            db.close().await;
        }
    }
    Ok(())
}
