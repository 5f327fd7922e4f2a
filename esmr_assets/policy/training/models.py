"""The trained policy models as stored values: the Q-learning agents of the hybrid policies
and the bandits' learners. Each is a mapping from policy name to model with `to_bytes` and
`from_bytes`, so that the model IO manager stores it beside its asset's tables and the
consumers get it back as an input. Bytes are deterministic: the same models give the same
file."""

from __future__ import annotations

import io
import json
import zipfile
from collections.abc import Iterator, Mapping

import numpy as np
import torch

from ...core.settings import PolicySettings
from ..learners.deep import DeepAgent
from ..learners.igl import IGLLearner
from ..learners.qlearning import QLearningAgent
from ..loop.bandits import HandRewardLearner, new_learner

_ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # a fixed timestamp: zip entries otherwise carry the clock


class _Models(Mapping):
    def __init__(self, models: Mapping) -> None:
        self._models = dict(models)

    def __getitem__(self, name: str):
        return self._models[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._models)

    def __len__(self) -> int:
        return len(self._models)


class AgentSet(_Models):
    """The Q-learning agents of the hybrid policies, by policy name, in training order.
    Stored as plain arrays (.npy entries of a zip: each agent's Q-table and visit counts)
    beside a JSON manifest of the agents in order with their parameters and temperature;
    loading runs no pickled code."""

    file_name = "q_agents.npz"

    def to_bytes(self) -> bytes:
        manifest = [
            {"name": name, "params": agent.get_params(), "temperature": agent.initialize().temperature_}
            for name, agent in self.items()
        ]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(zipfile.ZipInfo("manifest.json", _ZIP_TIME), json.dumps(manifest, sort_keys=True))
            for name, agent in self.items():
                for key, array in (("q", agent.q_), ("visits", agent.visits_)):
                    with archive.open(zipfile.ZipInfo(f"{name}/{key}.npy", _ZIP_TIME), "w") as entry:
                        np.lib.format.write_array(entry, np.ascontiguousarray(array), allow_pickle=False)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> AgentSet:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:

            def array(name: str, key: str) -> np.ndarray:
                with archive.open(f"{name}/{key}.npy") as entry:
                    return np.lib.format.read_array(entry, allow_pickle=False)

            return cls({
                entry["name"]: QLearningAgent.from_arrays(
                    entry["params"], array(entry["name"], "q"), array(entry["name"], "visits"), entry["temperature"]
                )
                for entry in json.loads(archive.read("manifest.json"))
            })


class BanditLearners(_Models):
    """The bandits' learners, by policy name: each bandit's ridge statistics and, for IGL-P,
    the inverse-kinematics parameters with their optimiser (a torch file of tensors, loaded
    with `weights_only=True`). Their hyper-parameters come from the settings on loading."""

    file_name = "bandit_learners.pt"

    def to_bytes(self) -> bytes:
        state = {}
        for name, learner in self.items():
            bandit = learner.bandit.initialize()
            entry = {key: torch.from_numpy(getattr(bandit, f"{key}_").copy()) for key in ("gram", "target", "coef")}
            if isinstance(learner, IGLLearner):
                ik = learner.inverse_kinematics.initialize()
                entry["ik"] = {
                    "signal_maps": ik.signal_maps_.detach().clone(),
                    "action_scores": ik.action_scores_.detach().clone(),
                    "bias": ik.bias_.detach().clone(),
                    "optimizer": ik.optimizer_.state_dict(),
                }
            state[name] = entry
        buffer = io.BytesIO()
        torch.save(state, buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes, settings: PolicySettings, seed: int) -> BanditLearners:
        """The learners of `to_bytes`, ready to act and keep learning."""
        state = torch.load(io.BytesIO(data), weights_only=True)  # tensors only: loading runs no pickled code
        learners: dict[str, IGLLearner | HandRewardLearner] = {}
        for name, entry in state.items():
            learner = new_learner(name, settings, seed)
            for key in ("gram", "target", "coef"):
                setattr(learner.bandit, f"{key}_", entry[key].numpy())
            if "ik" in entry:
                ik = learner.inverse_kinematics.initialize()
                with torch.no_grad():
                    ik.signal_maps_.copy_(entry["ik"]["signal_maps"])
                    ik.action_scores_.copy_(entry["ik"]["action_scores"])
                    ik.bias_.copy_(entry["ik"]["bias"])
                ik.optimizer_.load_state_dict(entry["ik"]["optimizer"])
            learners[name] = learner
        return cls(learners)


class DeepAgents(_Models):
    """The deep learners (stable-baselines3) by policy name: a zip of a JSON manifest (each
    agent's algorithm, hyper-parameters and observation normalisation, in order) and each
    agent's weights as a torch state dict, loaded with `weights_only=True`."""

    file_name = "deep_agents.zip"

    def to_bytes(self) -> bytes:
        manifest = [{"name": name, **agent.manifest()} for name, agent in self.items()]
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr(zipfile.ZipInfo("manifest.json", _ZIP_TIME), json.dumps(manifest, sort_keys=True))
            for name, agent in self.items():
                weights = io.BytesIO()
                torch.save(agent.state_dict(), weights)
                archive.writestr(zipfile.ZipInfo(f"{name}.pt", _ZIP_TIME), weights.getvalue())
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> DeepAgents:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return cls({
                entry["name"]: DeepAgent.from_manifest(
                    entry, torch.load(io.BytesIO(archive.read(f"{entry['name']}.pt")), weights_only=True))
                for entry in json.loads(archive.read("manifest.json"))
            })
