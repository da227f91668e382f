"""README's two set-up commands stay true: CI runs the test command verbatim, the main one works."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _setup_commands() -> list[str]:
    text = (ROOT / "README.md").read_text()
    block = text.split("```bash\n", 1)[1].split("```", 1)[0]
    return [ln for ln in block.splitlines() if ln.strip()]


def test_readme_opens_with_exactly_two_setup_commands_and_ci_runs_the_second():
    main_cmd, test_cmd = _setup_commands()
    assert "scripts/demo.sh" in main_cmd and "pytest" in test_cmd
    assert test_cmd in (ROOT / ".ci" / "run").read_text()


def test_demo_script_runs_the_pipeline_and_prints_the_score_table(tmp_path):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    out = tmp_path / "quickstart"
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh"), str(out)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)
    assert proc.returncode == 0, proc.stderr
    rows = [ln for ln in proc.stdout.splitlines() if ln.startswith("| 1 ") or ln.startswith("| 2 ")]
    assert len(rows) == 2 and "sim-ability-1.4" in rows[0] and "sim-ability-0.8" in rows[1]
    assert (out / "pointsdb.db").exists()


def test_task_reference_page_is_generated_from_the_current_registry():
    proc = subprocess.run([sys.executable, str(ROOT / "scripts" / "gen_task_docs.py"), "--check"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
