"""The app's process types as the swarm targets run them: one service per Procfile type but the release
phase, each with the count and size its settings give."""

from __future__ import annotations

from render.stack_file import Process
from settings import IaasSettings, LocalSettings, ServersSettings


def app_processes(settings: LocalSettings | ServersSettings | IaasSettings) -> tuple[Process, ...]:
    swarm = settings.swarm
    return (Process("web", settings.app.web_instances, swarm.web_cpus, swarm.web_memory),)
