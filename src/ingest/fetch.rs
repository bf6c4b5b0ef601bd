//! Obtaining MovieLens-100K and MPAA ratings with the ordinary package clients: the dataset
//! ships in the PyPI wheel `recbole==1.2.1`, the ratings in the npm package `vega-datasets`.
//! Everything lands in the data directory (never in git) and is fetched only once.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

pub const RECBOLE: &str = "recbole==1.2.1";
pub const VEGA_DATASETS: &str = "vega-datasets@3.2.1";
const ML_FILES: [&str; 5] = [
    "ml-100k.inter",
    "ml-100k.item",
    "ml-100k.user",
    "ml-100k.kg",
    "ml-100k.link",
];

pub struct MovieLens {
    /// Directory with the RecBole atomic files.
    pub dir: PathBuf,
    /// vega-datasets' movies.json, when npm could fetch it.
    pub movies_json: Option<PathBuf>,
}

fn run(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd
        .output()
        .with_context(|| format!("{what}: cannot start {:?}", cmd.get_program()))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Returns `<data_dir>/ml-100k`, fetching and copying the files there if missing.
pub fn ensure_movielens(data_dir: &Path, say: &dyn Fn(&str)) -> Result<MovieLens> {
    let dir = data_dir.join("ml-100k");
    let cache = data_dir.join("cache");
    if !ML_FILES.iter().all(|f| dir.join(f).is_file()) {
        let target = cache.join("recbole");
        let source = target.join("recbole/dataset_example/ml-100k");
        if !source.join("ml-100k.inter").is_file() {
            say(&format!("fetching MovieLens-100K from PyPI ({RECBOLE}) …"));
            let python = if which("python3") {
                "python3"
            } else {
                "python"
            };
            run(
                Command::new(python)
                    .args([
                        "-m",
                        "pip",
                        "install",
                        "--quiet",
                        "--disable-pip-version-check",
                        "--no-deps",
                        "--target",
                    ])
                    .arg(&target)
                    .arg(RECBOLE),
                "pip install recbole",
            )?;
        }
        std::fs::create_dir_all(&dir)?;
        for f in ML_FILES {
            std::fs::copy(source.join(f), dir.join(f))
                .with_context(|| format!("copying {f} from the recbole wheel"))?;
        }
    }
    let movies_json = dir.join("movies.json");
    if !movies_json.is_file() {
        let prefix = cache.join("vega");
        let installed = prefix.join("node_modules/vega-datasets/data/movies.json");
        if !installed.is_file() {
            say(&format!(
                "fetching MPAA ratings from npm ({VEGA_DATASETS}) …"
            ));
            std::fs::create_dir_all(&prefix)?;
            let fetched = run(
                Command::new("npm")
                    .args([
                        "install",
                        "--no-save",
                        "--no-audit",
                        "--no-fund",
                        "--silent",
                        "--prefix",
                    ])
                    .arg(&prefix)
                    .arg(VEGA_DATASETS),
                "npm install vega-datasets",
            );
            if let Err(e) = fetched {
                // Without ratings, kids profiles only see children's and animated titles:
                // safe, so carry on rather than fail the demo.
                say(&format!(
                    "warning: no maturity ratings ({e:#}); kids profiles will see only children's titles"
                ));
                return Ok(MovieLens {
                    dir,
                    movies_json: None,
                });
            }
        }
        std::fs::copy(&installed, &movies_json)?;
    }
    Ok(MovieLens {
        dir,
        movies_json: Some(movies_json),
    })
}

fn which(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|p| p.join(program).is_file()))
}
