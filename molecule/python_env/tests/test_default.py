"""What python_env leaves in the container."""

VENV = "/opt/train-venv"


def test_swift_sft_runs_from_the_environment(host):
    result = host.run(f"{VENV}/bin/swift sft --help")
    assert result.rc == 0, result.stderr
    assert "usage: sft" in result.stdout


def test_the_pinned_stack_is_installed(host):
    pins = dict(line.split("==") for line in host.file(f"{VENV}/requirements-train.txt").content_string.splitlines()
                if "==" in line and not line.startswith("#"))
    frozen = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1]
              for line in host.run(f"{VENV}/bin/pip freeze").stdout.splitlines() if "==" in line}
    for name, version in pins.items():
        assert frozen.get(name.lower().replace("_", "-"), "").split("+")[0] == version, name


def test_the_cpu_build_of_torch_without_a_gpu(host):
    result = host.run(f"{VENV}/bin/python -c 'import torch; print(torch.__version__, torch.cuda.is_available())'")
    assert result.stdout.split() == ["2.13.0+cpu", "False"]
    assert "deepspeed" not in host.run(f"{VENV}/bin/pip freeze").stdout.lower()


def test_not_the_system_python(host):
    assert host.run("python3 -c 'import swift'").rc != 0


def test_pip_settings_of_the_environment(host):
    conf = host.file(f"{VENV}/pip.conf").content_string
    assert "find-links = /opt/wheels" in conf
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in conf
