"""The interface between the ECS API and whatever runs an instance."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

Instance = dict[str, Any]


class InstanceBackend(ABC):
    """Each call returns quickly; long work continues in the background and shows in `observe`."""

    @abstractmethod
    def create(self, instance: Instance) -> None:
        """Begin making the machine for a new instance record (status Pending)."""

    @abstractmethod
    def start(self, instance: Instance) -> None:
        """Begin booting a stopped machine."""

    @abstractmethod
    def stop(self, instance: Instance, force: bool) -> None:
        """Begin a shutdown (clean unless `force`)."""

    @abstractmethod
    def kill(self, instance: Instance) -> None:
        """Cut the power now: no clean shutdown (a spot reclaim)."""

    @abstractmethod
    def destroy(self, instance: Instance) -> None:
        """Remove the machine and everything on it."""

    @abstractmethod
    def observe(self, instance: Instance) -> str:
        """The status the machine is in now: Pending, Starting, Running, Stopping or Stopped."""

    def create_image(self, instance: Instance, image: dict[str, Any]) -> None:  # noqa: B027 - optional
        """Begin capturing the instance's disk as `image` (records backend: nothing to capture)."""

    def image_progress(self, image: dict[str, Any]) -> int:
        """Percent done of an image capture started with `create_image`."""
        return 100

    def delete_image(self, image: dict[str, Any]) -> None:  # noqa: B027 - optional
        """Remove what `create_image` made."""
