"""Every user-facing failure is one line naming the item and what to do, exit code 1 (2 for usage), with the
traceback in the log file: run as a person would, `alignops` in a subprocess with a state directory of its own."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from registry.registry import Registry

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def alignops(home: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    environment = {key: value for key, value in os.environ.items() if key != "ALIGNOPS_REGISTRY"}
    environment |= {"ALIGNOPS_HOME": str(home), "COLUMNS": "200", **env}
    return subprocess.run([str(Path(sys.executable).parent / "alignops"), *args], cwd=ROOT, env=environment,
                          capture_output=True, text=True, timeout=300)


def assert_one_line_error(done: subprocess.CompletedProcess, *words: str) -> str:
    output = done.stdout + done.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert done.returncode == 1, output[-3000:]
    assert len(errors) == 1 and "Traceback" not in output, output[-3000:]
    assert len(errors[0]) < 600 and all(w in errors[0] for w in words), errors[0]
    return errors[0]


def test_a_very_long_file_name_is_one_bounded_line(tmp_path):
    done = alignops(tmp_path / "home", "data", "validate", str(tmp_path / ("x" * 100_000)))
    line = assert_one_line_error(done, "characters)")
    assert "Traceback" in (tmp_path / "home" / "logs" / "cli.log").read_text()  # kept for whoever debugs
    debug = alignops(tmp_path / "home", "--debug", "data", "validate", str(tmp_path / ("x" * 100_000)))
    assert debug.returncode == 1 and "Traceback" in debug.stderr and line


def test_an_unreachable_s3_is_one_line_without_its_credentials(tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    done = alignops(tmp_path / "home", "registry", "list", ALIGNOPS_REGISTRY="s3://bucket/registry",
                    AWS_ENDPOINT_URL_S3=f"http://alice:hunter2secret@127.0.0.1:{port}",
                    AWS_ACCESS_KEY_ID="AKIAEXAMPLE", AWS_SECRET_ACCESS_KEY="wJalrXUtnFEMIsecret", AWS_MAX_ATTEMPTS="2")
    line = assert_one_line_error(done, f"127.0.0.1:{port}", "retried")
    everything = done.stdout + done.stderr + (tmp_path / "home" / "logs" / "cli.log").read_text()
    assert "hunter2secret" not in everything and "wJalrXUtnFEMIsecret" not in everything, line


def test_a_refused_promotion_is_one_line_without_prefects_traceback(tmp_path):
    home = tmp_path / "home"
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "config.json").write_text("{}")
    failing = {"policy": "synthetic", "passed": False,
               "rules": [{"rule": "floor", "passed": False, "reason": "s/t2i_r1 = 0.0100 < floor 0.1000"}]}
    Registry.local(home / "registry").register("general", artifact, gate=failing)
    done = alignops(home, "registry", "promote", "general", "1")
    assert_one_line_error(done, "general:1 cannot be promoted", "its gate verdict failed", "--force")
    assert (done.stdout + done.stderr).count("cannot be promoted") == 1  # said once, not again by Prefect


def test_a_poisoned_checkpoint_is_refused_in_one_line_and_never_runs(tmp_path, tiny_dataset):
    import pickle

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    checkpoint = tmp_path / "home" / "runs" / "poisoned" / "checkpoints" / "last.ckpt"
    checkpoint.parent.mkdir(parents=True)
    checkpoint.write_bytes(pickle.dumps({"state_dict": Payload()}))
    done = alignops(tmp_path / "home", "train", str(tiny_dataset), "--run-name", "poisoned")
    assert_one_line_error(done, "UnpicklingError")
    assert not (tmp_path / "pwned").exists()


def test_usage_errors_exit_2_and_a_run_name_cannot_leave_runs(tmp_path, tiny_dataset):
    assert alignops(tmp_path / "home", "registry", "promote").returncode == 2
    done = alignops(tmp_path / "home", "train", str(tiny_dataset), "--run-name", "../../escaped")
    assert_one_line_error(done, "invalid run name '../../escaped'")
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "home" / "escaped").exists()


def test_continual_refuses_an_unknown_method_and_a_teacher_it_would_not_use(tmp_path, tiny_dataset):
    done = alignops(tmp_path / "home", "continual", "stream", str(tiny_dataset), "--method", "ewc")
    assert_one_line_error(done, "--method 'ewc'", "finetune, wiseft, modx, lora, momentum")
    done = alignops(tmp_path / "home", "continual", "stream", str(tiny_dataset), "--method", "lora",
                    "--distil-from", "general@production")
    assert_one_line_error(done, "--distil-from", "--method modx")


def test_a_poisoned_open_clip_checkpoint_is_refused_in_one_line_and_never_runs(tmp_path):
    """A folder in open_clip's hub layout whose weights file would run a command if unpickled."""
    import json
    import pickle

    from transformers import PreTrainedTokenizerFast

    from components.config import TokenizerConfig
    from components.text.tokenizer import train_tokenizer

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    folder = tmp_path / "hub"
    tokenizer = train_tokenizer(["a red square", "two blue circles"] * 10, TokenizerConfig(vocab_size=300))
    PreTrainedTokenizerFast(tokenizer_object=tokenizer.tokenizer, pad_token="[PAD]", eos_token="[EOS]",
                            bos_token="[SOS]").save_pretrained(folder)
    text = {"context_length": 16, "vocab_size": 300, "width": 32, "heads": 2, "layers": 1,
            "hf_tokenizer_name": "local", "pool_type": "eos", "eos_id": 3}
    vision = {"image_size": 32, "layers": 1, "width": 32, "head_width": 16, "patch_size": 8}
    (folder / "open_clip_config.json").write_text(json.dumps({"model_cfg": {"embed_dim": 32, "vision_cfg": vision,
                                                                            "text_cfg": text}}))
    (folder / "open_clip_pytorch_model.bin").write_bytes(pickle.dumps({"state_dict": Payload()}))
    done = alignops(tmp_path / "home", "registry", "import-openclip", str(folder), "tiny")
    assert_one_line_error(done, "open_clip_pytorch_model.bin", "objects other than tensors")
    assert not (tmp_path / "pwned").exists()
    done = alignops(tmp_path / "home", "registry", "import-openclip", "RN50", "rn", "--checkpoint",
                    str(folder / "open_clip_pytorch_model.bin"))
    assert_one_line_error(done, "no open_clip config named 'RN50'", "alignops[openclip]")
