"""What gpu_driver leaves on a host without a GPU in repository mode."""


def test_nvidia_repository_is_configured(host):
    sources = host.file("/etc/apt/sources.list.d/nvidia-cuda.sources")
    assert sources.exists and sources.mode == 0o644
    assert "https://developer.download.nvidia.com/compute/cuda/repos/debian12/x86_64/" in sources.content_string
    assert "Signed-By: /usr/share/keyrings/nvidia-cuda.asc" in sources.content_string


def test_versions_are_pinned(host):
    pins = host.file("/etc/apt/preferences.d/nvidia-cuda.pref").content_string
    assert "Pin: version 550.127.08-*" in pins
    assert "Package: cuda-toolkit-12-4*\nPin: version 12.4.1-*" in pins
    assert "Package: libcudnn9*\nPin: version 9.2.0.82-*" in pins
    assert pins.count("Pin-Priority: 1001") == 3


def test_nothing_is_installed_without_a_gpu(host):
    assert not host.package("cuda-drivers-550").is_installed
    assert not host.exists("nvidia-smi")
