//! PESQ wideband scores (ITU-T P.862 with the P.862.2 wideband mapping to MOS-LQO) through
//! `benches/scripts/pesq_score.py`, which uses the `pesq` package from PyPI.
//!
//! Drive it: [`find_python`] says which interpreter has `numpy` and `pesq` (or why none
//! does); write the reference and degraded WAVs; [`score`] runs the script once over all
//! jobs and returns one [`PesqScore`] per job id. Install the packages with
//! `make pesq-tools` (into the workspace's `.tools/venv`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// P.862.2 MOS-LQO of a signal against itself: the top of the wideband scale.
pub const WB_MAX_MOS: f64 = 4.64;

/// One pair to score.
#[derive(Debug, Clone)]
pub struct PesqJob {
    /// Identifier echoed back.
    pub id: String,
    /// Clean reference: a clip repeated end to end.
    pub reference: PathBuf,
    /// What was played out.
    pub degraded: PathBuf,
    /// The clip's length in the reference's samples (the reference is scored piece by piece).
    pub chunk_samples: usize,
}

/// The score of one job.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PesqScore {
    /// Mean MOS-LQO over the pieces (`None` if no piece could be scored).
    pub mos: Option<f64>,
    /// Lowest piece's MOS-LQO.
    pub min: Option<f64>,
    /// Pieces scored.
    pub pieces: u32,
}

/// The scoring script.
pub fn script_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("scripts/pesq_score.py")
}

/// An interpreter that can import `numpy` and `pesq`: `$JITTERBENCH_PYTHON`, else the
/// workspace's `.tools/venv/bin/python3`, else `python3` on `PATH`. `Err` says what is
/// missing and how to install it.
pub fn find_python() -> Result<PathBuf, String> {
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../.tools/venv/bin/python3");
    let candidates: Vec<PathBuf> = match std::env::var_os("JITTERBENCH_PYTHON") {
        Some(p) => vec![PathBuf::from(p)],
        None => vec![venv, PathBuf::from("python3")],
    };
    let mut why = Vec::new();
    for py in candidates {
        match Command::new(&py)
            .args(["-c", "import numpy, pesq"])
            .output()
        {
            Ok(o) if o.status.success() => return Ok(py),
            Ok(o) => why.push(format!(
                "{}: {}",
                py.display(),
                String::from_utf8_lossy(&o.stderr)
                    .lines()
                    .last()
                    .unwrap_or("import failed")
            )),
            Err(e) => why.push(format!("{}: {e}", py.display())),
        }
    }
    Err(format!(
        "no Python with numpy and pesq ({}); `make pesq-tools` installs them into .tools/venv",
        why.join("; ")
    ))
}

/// Scores `jobs` with `python` running `parallel` worker processes; the manifest goes to
/// `dir`.
pub fn score(
    python: &Path,
    jobs: &[PesqJob],
    parallel: usize,
    dir: &Path,
) -> Result<HashMap<String, PesqScore>, String> {
    let mut manifest = String::new();
    for j in jobs {
        if j.id.contains(char::is_whitespace) {
            return Err(format!("job id {:?} has whitespace", j.id));
        }
        let _ = writeln!(
            manifest,
            "{} {} {} {}",
            j.id,
            j.reference.display(),
            j.degraded.display(),
            j.chunk_samples
        );
    }
    let path = dir.join("pesq-manifest.txt");
    std::fs::write(&path, manifest).map_err(|e| format!("{}: {e}", path.display()))?;
    let out = Command::new(python)
        .arg(script_path())
        .args(["--jobs", &parallel.max(1).to_string()])
        .arg(&path)
        .output()
        .map_err(|e| format!("running {}: {e}", python.display()))?;
    if !out.status.success() {
        return Err(format!(
            "pesq_score.py failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    let mut scores = HashMap::new();
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let v: serde_json::Value =
            serde_json::from_str(line).map_err(|e| format!("pesq_score.py said {line:?}: {e}"))?;
        let id = v["id"].as_str().ok_or("pesq_score.py: no id")?.to_owned();
        scores.insert(
            id,
            PesqScore {
                mos: v["mos"].as_f64(),
                min: v["min"].as_f64(),
                pieces: v["pieces"].as_u64().unwrap_or(0) as u32,
            },
        );
    }
    Ok(scores)
}
