"""The app's process types as the swarm targets run them: one service per app/Procfile type but the release
phase, each with the count and size its settings give."""

from __future__ import annotations

from render.stack_file import Process
from settings import IaasSettings, LocalSettings, ServersSettings


def app_processes(settings: LocalSettings | ServersSettings | IaasSettings) -> tuple[Process, ...]:
    swarm, app = settings.swarm, settings.app
    web = Process("web", app.web_instances, swarm.web_cpus, swarm.web_memory)
    return (web, *(Process(name, p.instances, p.cpus, p.memory) for name, p in sorted(app.processes.items())))
