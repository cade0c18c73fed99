"""The gymnasium environment `opioidsim/Subject-v0` (opioidsim.gym).

Expectations come from the environment's contract (gymnasium's checker, seeding, arguments) and
from pharmacology (a dose puts drug in plasma and brain, occupies MOR and feels good; a massive
dose in a drug-naive subject stops breathing), not from the model's own outputs.
"""
from __future__ import annotations

import numpy as np
import pytest

gymnasium = pytest.importorskip("gymnasium")

import opioidsim.gym as ogym  # noqa: E402  (registers the environment)

#: short decision steps keep the tests cheap; the compiled unit is shared by every environment
FAST = dict(decide_every="15min", episode_length="1h")


def make(**kw):
    return gymnasium.make(ogym.ENV_ID, **{**FAST, **kw})


def test_registered_and_passes_check_env():
    from gymnasium.utils.env_checker import check_env

    assert ogym.ENV_ID in gymnasium.registry
    env = make()
    check_env(env.unwrapped, skip_render_check=False)
    obs, info = env.reset(seed=3)
    assert env.observation_space.contains(obs)
    assert env.action_space.n == 2


def test_use_raises_drug_and_pleasure_compared_with_abstaining():
    # pharmacology: IV heroin → 6-MAM → morphine in plasma and brain, MOR occupancy in the VTA,
    # dopamine release and euphoria; abstaining from drug-naive leaves all of them at baseline
    used, abstained = make(), make()
    o_u, _ = used.reset(seed=11)
    o_a, _ = abstained.reset(seed=11)
    np.testing.assert_array_equal(o_u, o_a)
    o_u, r_u, *_, info_u = used.step(1)
    o_a, r_a, *_, info_a = abstained.step(0)
    for readout in ("plasma_morphine", "brain_morphine", "brain_6mam", "mor_occupancy_vta", "nac_dopamine"):
        assert info_u[readout] > info_a[readout] * 1.5 + 1e-3, readout
    assert info_u["hedonic_mean"] > info_a["hedonic_mean"] + 1.0
    assert r_u > r_a
    names = used.unwrapped.observation_names
    assert o_u[names.index("hedonic_state")] > o_a[names.index("hedonic_state")]
    assert o_u[names.index("hours_since_use")] < o_a[names.index("hours_since_use")] == 1.0
    assert info_u["uses"] == 1 and info_a["uses"] == 0


def test_massive_dose_is_an_overdose_that_ends_the_episode():
    # 200 mg IV heroin, 20 times a usual dose, in a drug-naive adult: respiratory arrest
    env = make(dose_mg=[10.0, 200.0], overdose_penalty=50.0)
    env.reset(seed=1)
    obs, reward, terminated, truncated, info = env.step(2)
    assert terminated and not truncated
    assert info["overdose"] and info["min_spo2"] < 75.0
    assert reward <= -50.0 + 1.0
    assert env.observation_space.contains(obs)


def test_same_seed_same_trajectory_and_seed_picks_the_subject():
    actions = [1, 0, 0, 1]

    def run(seed):
        env = make()
        obs, info = env.reset(seed=seed)
        traj, rewards = [obs], []
        for a in actions:
            obs, r, terminated, truncated, info = env.step(a)
            traj.append(obs)
            rewards.append(r)
        assert truncated and not terminated  # 1 h of 15-min decisions: four steps
        return np.array(traj), np.array(rewards), info

    t1, r1, i1 = run(5)
    t2, r2, i2 = run(5)
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(r1, r2)
    assert i1["body_weight_kg"] == i2["body_weight_kg"]
    t3, r3, i3 = run(6)
    assert i3["body_weight_kg"] != i1["body_weight_kg"]  # another subject
    assert not np.array_equal(r1, r3)


def test_reset_without_seed_draws_subjects_from_the_env_generator():
    env = make()
    env.reset(seed=0)
    w = set()
    for _ in range(3):
        _, info = env.reset()
        w.add(info["body_weight_kg"])
    assert len(w) == 3


def test_configuration_sets_the_spaces_and_episode_length():
    env = make(dose_mg=[5, 10, 20], observations=["craving", "withdrawal", "plasma_morphine"],
               decide_every="30min", episode_length="2h", species="rat")
    assert env.action_space.n == 4
    assert env.observation_space.shape == (3,)
    env.reset(seed=2)
    steps, truncated = 0, False
    while not truncated:
        _, _, terminated, truncated, info = env.step(0)
        assert not terminated
        steps += 1
    assert steps == 4 and info["time_h"] == pytest.approx(2.0)
    assert info["body_weight_kg"] < 1.0  # a rat


@pytest.mark.parametrize("kwargs, arg", [
    ({"drug": "cocaine"}, "drug"),
    ({"route": "oral"}, "route"),              # heroin has no oral route in the model
    ({"dose_mg": 0}, "dose_mg"),
    ({"dose_mg": -5.0}, "dose_mg"),
    ({"dose_mg": "10 mg"}, "dose_mg"),
    ({"dose_mg": []}, "dose_mg"),
    ({"dose_mg": 5000.0}, "dose_mg"),
    ({"decide_every": 60}, "decide_every"),     # no unit
    ({"decide_every": "10s"}, "decide_every"),  # shorter than a minute
    ({"decide_every": "1 kg"}, "decide_every"),
    ({"episode_length": "30min", "decide_every": "1h"}, "episode_length"),
    ({"episode_length": "100y"}, "episode_length"),
    ({"species": "mouse"}, "species"),
    ({"observations": ["craving", "mood"]}, "observations"),
    ({"observations": []}, "observations"),
    ({"observations": "craving"}, "observations"),
    ({"overdose_penalty": -1.0}, "overdose_penalty"),
    ({"overdose_penalty": float("nan")}, "overdose_penalty"),
    ({"pain_stimulus": 2.0}, "pain_stimulus"),
    ({"render_mode": "human"}, "render_mode"),
])
def test_bad_arguments_get_a_clear_message(kwargs, arg):
    with pytest.raises(ValueError) as exc:
        ogym.SubjectEnv(**{**FAST, **kwargs})
    msg = str(exc.value)
    assert arg in msg and repr(kwargs[arg]) in msg, msg
    assert ("must" in msg) or ("can be given by" in msg), msg


def test_bad_action_and_step_before_reset():
    env = ogym.SubjectEnv(**FAST)
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action"):
        env.step(7)


def test_render_ansi_describes_the_step():
    env = ogym.SubjectEnv(render_mode="ansi", **FAST)
    env.reset(seed=0)
    env.step(1)
    text = env.render()
    assert "use 10 mg" in text and "hedonic" in text and "SpO2" in text


@pytest.mark.slow
def test_ppo_learns_to_use_but_not_to_overdose():
    """A stable-baselines3 PPO agent, trained briefly on a one-hour episode with 15-min
    decisions and three actions (abstain, 10 mg, 150 mg IV heroin), beats a random policy on
    subjects it never saw: its return is higher and it overdoses less. What it should learn
    follows from the reward, not from the model's numbers: a usual dose feels good, a massive one
    ends the episode with the penalty."""
    sb3 = pytest.importorskip("stable_baselines3")
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    kw = dict(FAST, dose_mg=[10.0, 150.0])

    def evaluate(policy, seeds):
        env = make(**kw)
        returns, overdoses, actions = [], 0, []
        for s in seeds:
            obs, _ = env.reset(seed=s)
            total = 0.0
            while True:
                a = policy(obs)
                actions.append(a)
                obs, r, terminated, truncated, _ = env.step(a)
                total += r
                if terminated or truncated:
                    break
            overdoses += terminated
            returns.append(total)
        return float(np.mean(returns)), overdoses, np.bincount(actions, minlength=3) / len(actions)

    env = make(**kw)
    env.reset(seed=0)
    agent = sb3.PPO("MlpPolicy", env, n_steps=128, batch_size=64, n_epochs=10, learning_rate=3e-3, gamma=0.9,
                    seed=0, device="cpu", verbose=0)
    agent.learn(total_timesteps=1024)
    seeds = range(1000, 1030)  # subjects never seen in training (training draws from the env's generator)
    rng = np.random.default_rng(0)
    random_return, random_od, _ = evaluate(lambda o: int(rng.integers(3)), seeds)
    trained_return, trained_od, freq = evaluate(lambda o: int(agent.predict(o, deterministic=True)[0]), seeds)
    print(f"PPO: random return {random_return:.2f} ({random_od} overdoses), trained {trained_return:.2f} "
          f"({trained_od} overdoses), action frequencies {np.round(freq, 2)}")
    assert trained_return > random_return + 10.0
    assert trained_od < random_od
    assert freq[1] > 1 / 3  # it uses the usual dose more often than chance


def test_every_drug_that_can_be_dosed_can_be_observed_in_plasma():
    # a lab can measure any drug the environment lets the agent take (naltrexone among them)
    from opioidsim.model import default_model

    readouts = set(default_model().readouts)
    for drug in ogym._DRUGS:
        assert f"plasma_{drug}" in ogym.OBSERVATIONS, drug
        assert ogym.OBSERVATIONS[f"plasma_{drug}"][0] in readouts
