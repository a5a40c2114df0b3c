"""CI detection: recorded environments per provider -> exact ci_info and run identifier."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from behave_bstack.origin.ci import RUN_IDENTIFIER_MAX, ci_run_identifier, detect_ci, is_ci

SAFE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

# Each case: a recorded environment of one shard, the variables that differ on a second
# shard of the same run, the variables that differ on a re-run (None when the provider
# exposes no attempt), and the exact expected ci_info / identifier for the first shard.
CASES = {
    "github": dict(
        env={
            "CI": "true",
            "GITHUB_ACTIONS": "true",
            "GITHUB_SERVER_URL": "https://github.com",
            "GITHUB_REPOSITORY": "acme/shop",
            "GITHUB_RUN_ID": "9876543210",
            "GITHUB_RUN_NUMBER": "412",
            "GITHUB_RUN_ATTEMPT": "1",
            "GITHUB_WORKFLOW": "E2E",
            "GITHUB_JOB": "behave",
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REF_NAME": "main",
            "GITHUB_REF_TYPE": "branch",
            "GITHUB_SHA": "4f1c0dcd2b0fb2a4a9f0d1b6b5b7c3c1e1f2a3b4",
            "RUNNER_NAME": "GitHub Actions 7",
            "RUNNER_OS": "Linux",
        },
        shard={"RUNNER_NAME": "GitHub Actions 12", "SHARD": "2"},
        rerun={"GITHUB_RUN_ATTEMPT": "2", "RUNNER_NAME": "GitHub Actions 3"},
        info={
            "name": "GitHub Actions",
            "build_url": "https://github.com/acme/shop/actions/runs/9876543210",
            "url": "https://github.com/acme/shop/actions/runs/9876543210/attempts/1",
            "build_number": "412",
            "job_name": "E2E",
        },
        run_id="gha-9876543210-1",
    ),
    "gitlab": dict(
        env={
            "CI": "true",
            "GITLAB_CI": "true",
            "CI_SERVER_URL": "https://gitlab.com",
            "CI_PROJECT_PATH": "acme/shop",
            "CI_PIPELINE_ID": "1122334455",
            "CI_PIPELINE_IID": "87",
            "CI_PIPELINE_URL": "https://gitlab.com/acme/shop/-/pipelines/1122334455",
            "CI_JOB_ID": "6677889900",
            "CI_JOB_URL": "https://gitlab.com/acme/shop/-/jobs/6677889900",
            "CI_JOB_NAME": "behave 1/3",
            "CI_NODE_INDEX": "1",
            "CI_NODE_TOTAL": "3",
            "CI_COMMIT_REF_NAME": "main",
            "CI_COMMIT_BRANCH": "main",
        },
        shard={
            "CI_JOB_ID": "6677889901",
            "CI_JOB_URL": "https://gitlab.com/acme/shop/-/jobs/6677889901",
            "CI_JOB_NAME": "behave 2/3",
            "CI_NODE_INDEX": "2",
        },
        rerun=None,  # a retried GitLab job keeps CI_PIPELINE_ID; no attempt variable
        info={
            "name": "GitLab CI",
            "build_url": "https://gitlab.com/acme/shop/-/pipelines/1122334455",
            "url": "https://gitlab.com/acme/shop/-/jobs/6677889900",
            "build_number": "1122334455",
            "job_name": "behave",
        },
        run_id="gitlab-1122334455",
    ),
    "jenkins": dict(
        env={
            "JENKINS_URL": "https://ci.acme.example/",
            "JENKINS_HOME": "/var/jenkins_home",
            "BUILD_URL": "https://ci.acme.example/job/shop/job/main/57/",
            "BUILD_NUMBER": "57",
            "BUILD_ID": "57",
            "BUILD_TAG": "jenkins-shop-main-57",
            "JOB_NAME": "shop/main",
            "BRANCH_NAME": "main",
            "NODE_NAME": "agent-1",
            "EXECUTOR_NUMBER": "0",
            "STAGE_NAME": "E2E shard 1",
        },
        shard={"NODE_NAME": "agent-2", "EXECUTOR_NUMBER": "1", "STAGE_NAME": "E2E shard 2"},
        rerun={
            "BUILD_NUMBER": "58",
            "BUILD_ID": "58",
            "BUILD_TAG": "jenkins-shop-main-58",
            "BUILD_URL": "https://ci.acme.example/job/shop/job/main/58/",
        },
        info={
            "name": "Jenkins",
            "build_url": "https://ci.acme.example/job/shop/job/main/57/",
            "url": "https://ci.acme.example/job/shop/job/main/57/",
            "build_number": "57",
            "job_name": "shop/main",
        },
        run_id="jenkins-shop-main-57",
    ),
    "circleci": dict(
        env={
            "CI": "true",
            "CIRCLECI": "true",
            "CIRCLE_BUILD_NUM": "2201",
            "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/shop/2201",
            "CIRCLE_JOB": "behave",
            "CIRCLE_NODE_INDEX": "0",
            "CIRCLE_NODE_TOTAL": "4",
            "CIRCLE_WORKFLOW_ID": "5a0e3a3c-3e9f-4d2b-9d61-0c7f1d7b2e11",
            "CIRCLE_WORKFLOW_JOB_ID": "0b6f7c1e-2a54-4f7c-8e15-4d0e5b1c9a02",
            "CIRCLE_PROJECT_USERNAME": "acme",
            "CIRCLE_PROJECT_REPONAME": "shop",
            "CIRCLE_BRANCH": "main",
        },
        shard={"CIRCLE_NODE_INDEX": "3"},
        rerun={
            # "Rerun workflow from failed" creates a new workflow (new id, new job number).
            "CIRCLE_WORKFLOW_ID": "9c41e7d0-6b2a-4f3e-8a17-2d5c6e7f8a90",
            "CIRCLE_WORKFLOW_JOB_ID": "1d2e3f40-5a6b-4c7d-8e9f-0a1b2c3d4e5f",
            "CIRCLE_BUILD_NUM": "2207",
            "CIRCLE_BUILD_URL": "https://circleci.com/gh/acme/shop/2207",
        },
        info={
            "name": "CircleCI",
            "build_url": "https://circleci.com/gh/acme/shop/2201",
            "url": "https://circleci.com/gh/acme/shop/2201",
            "build_number": "2201",
            "job_name": "behave",
        },
        run_id="circleci-5a0e3a3c-3e9f-4d2b-9d61-0c7f1d7b2e11",
    ),
    "azure": dict(
        env={
            "TF_BUILD": "True",
            "AGENT_NAME": "Azure Pipelines 3",
            "SYSTEM_COLLECTIONURI": "https://dev.azure.com/acme/",
            "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI": "https://dev.azure.com/acme/",
            "SYSTEM_TEAMPROJECT": "Web Shop",
            "BUILD_BUILDID": "4242",
            "BUILD_BUILDNUMBER": "20250301.3",
            "BUILD_DEFINITIONNAME": "shop-e2e",
            "BUILD_SOURCEBRANCH": "refs/heads/main",
            "SYSTEM_JOBID": "12f1170f-54f2-53f3-20dd-22fc7dff55f9",
            "SYSTEM_JOBATTEMPT": "1",
            "SYSTEM_JOBDISPLAYNAME": "E2E 1",
            "SYSTEM_JOBPOSITIONINPHASE": "1",
            "SYSTEM_TOTALJOBSINPHASE": "2",
        },
        shard={
            "AGENT_NAME": "Azure Pipelines 9",
            "SYSTEM_JOBID": "5a6b3c1d-0e2f-5a4b-9c8d-7e6f5a4b3c2d",
            "SYSTEM_JOBDISPLAYNAME": "E2E 2",
            "SYSTEM_JOBPOSITIONINPHASE": "2",
        },
        rerun={"SYSTEM_JOBATTEMPT": "2"},
        info={
            "name": "Azure Pipelines",
            "build_url": "https://dev.azure.com/acme/Web%20Shop/_build/results?buildId=4242",
            "url": "https://dev.azure.com/acme/Web%20Shop/_build/results?buildId=4242"
            "&view=logs&j=12f1170f-54f2-53f3-20dd-22fc7dff55f9",
            "build_number": "20250301.3",
            "job_name": "shop-e2e",
        },
        run_id="azure-4242-1",
    ),
    "bitbucket": dict(
        env={
            "CI": "true",
            "BITBUCKET_BUILD_NUMBER": "318",
            "BITBUCKET_WORKSPACE": "acme",
            "BITBUCKET_REPO_SLUG": "shop",
            "BITBUCKET_REPO_FULL_NAME": "acme/shop",
            "BITBUCKET_PIPELINE_UUID": "{3f5c1b2a-9d4e-4a7b-8c6d-1e2f3a4b5c6d}",
            "BITBUCKET_STEP_UUID": "{a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d}",
            "BITBUCKET_PARALLEL_STEP": "0",
            "BITBUCKET_PARALLEL_STEP_COUNT": "2",
            "BITBUCKET_BRANCH": "main",
            "BITBUCKET_COMMIT": "4f1c0dcd2b0fb2a4a9f0d1b6b5b7c3c1e1f2a3b4",
        },
        shard={
            "BITBUCKET_STEP_UUID": "{b2c3d4e5-f6a7-4b8c-9d0e-1f2a3b4c5d6e}",
            "BITBUCKET_PARALLEL_STEP": "1",
        },
        rerun={
            # A rerun is a new build: new number, new pipeline UUID.
            "BITBUCKET_BUILD_NUMBER": "319",
            "BITBUCKET_PIPELINE_UUID": "{0c9d8e7f-6a5b-4c3d-2e1f-0a9b8c7d6e5f}",
        },
        info={
            "name": "Bitbucket Pipelines",
            "build_url": "https://bitbucket.org/acme/shop/pipelines/results/318",
            "url": "https://bitbucket.org/acme/shop/pipelines/results/318/steps/"
            "%7Ba1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d%7D",
            "build_number": "318",
        },
        run_id="bitbucket-318-3f5c1b2a-9d4e-4a7b-8c6d-1e2f3a4b5c6d",
    ),
    "buildkite": dict(
        env={
            "CI": "true",
            "BUILDKITE": "true",
            "BUILDKITE_BUILD_ID": "0190f4c2-7b1e-4b8a-9c61-3f2d1a0e5b77",
            "BUILDKITE_BUILD_NUMBER": "1514",
            "BUILDKITE_BUILD_URL": "https://buildkite.com/acme/shop/builds/1514",
            "BUILDKITE_JOB_ID": "0190f4c2-8a2b-4c1d-9e0f-1a2b3c4d5e6f",
            "BUILDKITE_PIPELINE_SLUG": "shop",
            "BUILDKITE_PIPELINE_NAME": "Shop",
            "BUILDKITE_ORGANIZATION_SLUG": "acme",
            "BUILDKITE_LABEL": ":cucumber: E2E",
            "BUILDKITE_PARALLEL_JOB": "0",
            "BUILDKITE_PARALLEL_JOB_COUNT": "4",
            "BUILDKITE_RETRY_COUNT": "0",
            "BUILDKITE_BRANCH": "main",
        },
        shard={
            "BUILDKITE_JOB_ID": "0190f4c2-8a2b-4c1d-9e0f-aaaaaaaaaaaa",
            "BUILDKITE_PARALLEL_JOB": "3",
        },
        rerun={
            "BUILDKITE_JOB_ID": "0190f4c9-0000-4c1d-9e0f-bbbbbbbbbbbb",
            "BUILDKITE_RETRY_COUNT": "1",
        },
        info={
            "name": "Buildkite",
            "build_url": "https://buildkite.com/acme/shop/builds/1514",
            "url": "https://buildkite.com/acme/shop/builds/1514#0190f4c2-8a2b-4c1d-9e0f-1a2b3c4d5e6f",
            "build_number": "1514",
            "job_name": "Shop",
        },
        run_id="buildkite-0190f4c2-7b1e-4b8a-9c61-3f2d1a0e5b77-0",
    ),
    "teamcity": dict(
        env={
            "TEAMCITY_VERSION": "2024.12 (build 174331)",
            "TEAMCITY_PROJECT_NAME": "Shop",
            "TEAMCITY_BUILDCONF_NAME": "E2E",
            "BUILD_NUMBER": "77",
            "BUILD_VCS_NUMBER": "4f1c0dcd2b0fb2a4a9f0d1b6b5b7c3c1e1f2a3b4",
            "TEAMCITY_BUILD_PROPERTIES_FILE": "/opt/buildagent/temp/buildTmp/teamcity.build1.properties",
        },
        shard={
            "TEAMCITY_BUILD_PROPERTIES_FILE": "/opt/buildagent2/temp/buildTmp/teamcity.build2.properties"
        },
        rerun={"BUILD_NUMBER": "78"},
        info={"name": "TeamCity", "build_number": "77", "job_name": "Shop / E2E"},
        run_id="teamcity-Shop-E2E-77",
    ),
    "travis": dict(
        env={
            "CI": "true",
            "TRAVIS": "true",
            "CONTINUOUS_INTEGRATION": "true",
            "TRAVIS_BUILD_ID": "271828182",
            "TRAVIS_BUILD_NUMBER": "910",
            "TRAVIS_BUILD_WEB_URL": "https://app.travis-ci.com/acme/shop/builds/271828182",
            "TRAVIS_JOB_ID": "314159265",
            "TRAVIS_JOB_NUMBER": "910.1",
            "TRAVIS_JOB_NAME": "e2e",
            "TRAVIS_JOB_WEB_URL": "https://app.travis-ci.com/acme/shop/jobs/314159265",
            "TRAVIS_REPO_SLUG": "acme/shop",
            "TRAVIS_BRANCH": "main",
        },
        shard={
            "TRAVIS_JOB_ID": "314159266",
            "TRAVIS_JOB_NUMBER": "910.2",
            "TRAVIS_JOB_WEB_URL": "https://app.travis-ci.com/acme/shop/jobs/314159266",
        },
        rerun=None,  # a restarted Travis job keeps TRAVIS_BUILD_ID; no attempt variable
        info={
            "name": "Travis CI",
            "build_url": "https://app.travis-ci.com/acme/shop/builds/271828182",
            "url": "https://app.travis-ci.com/acme/shop/jobs/314159265",
            "build_number": "910",
            "job_name": "e2e",
        },
        run_id="travis-271828182",
    ),
    "codebuild": dict(
        env={
            "CODEBUILD_BUILD_ID": "shop-e2e:0f4c7a52-3c1d-4e5b-9a8f-6b7c8d9e0a1b",
            "CODEBUILD_BUILD_ARN": "arn:aws:codebuild:eu-west-1:123456789012:build/"
            "shop-e2e:0f4c7a52-3c1d-4e5b-9a8f-6b7c8d9e0a1b",
            "CODEBUILD_BUILD_NUMBER": "57",
            "CODEBUILD_INITIATOR": "codepipeline/shop",
            "CODEBUILD_SRC_DIR": "/codebuild/output/src123/src",
            "CODEBUILD_RESOLVED_SOURCE_VERSION": "4f1c0dcd2b0fb2a4a9f0d1b6b5b7c3c1e1f2a3b4",
            "AWS_REGION": "eu-west-1",
            "AWS_DEFAULT_REGION": "eu-west-1",
        },
        shard={"CODEBUILD_SRC_DIR": "/codebuild/output/src456/src"},
        rerun={
            # A retried CodeBuild build is a new build with a new id.
            "CODEBUILD_BUILD_ID": "shop-e2e:7e8f9a0b-1c2d-4e3f-8a5b-6c7d8e9f0a1b",
            "CODEBUILD_BUILD_NUMBER": "58",
        },
        info={
            "name": "AWS CodeBuild",
            "build_url": "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/"
            "projects/shop-e2e/build/shop-e2e%3A0f4c7a52-3c1d-4e5b-9a8f-6b7c8d9e0a1b/"
            "?region=eu-west-1",
            "url": "https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/"
            "projects/shop-e2e/build/shop-e2e%3A0f4c7a52-3c1d-4e5b-9a8f-6b7c8d9e0a1b/"
            "?region=eu-west-1",
            "build_number": "57",
            "job_name": "shop-e2e",
        },
        run_id="codebuild-0f4c7a52-3c1d-4e5b-9a8f-6b7c8d9e0a1b",
    ),
}


@pytest.mark.parametrize("provider", sorted(CASES))
def test_recorded_environment_gives_exact_ci_info(provider: str) -> None:
    case = CASES[provider]
    assert detect_ci(case["env"]) == case["info"]
    assert is_ci(case["env"]) is True


@pytest.mark.parametrize("provider", sorted(CASES))
def test_recorded_environment_gives_exact_run_identifier(provider: str) -> None:
    case = CASES[provider]
    identifier = ci_run_identifier(case["env"])
    assert identifier == case["run_id"]
    assert SAFE_ID.fullmatch(identifier)


@pytest.mark.parametrize("provider", sorted(CASES))
def test_two_shards_of_one_run_share_the_identifier(provider: str) -> None:
    case = CASES[provider]
    other_shard = {**case["env"], **case["shard"]}
    assert other_shard != case["env"]
    assert ci_run_identifier(other_shard) == ci_run_identifier(case["env"])
    assert detect_ci(other_shard)["name"] == case["info"]["name"]


@pytest.mark.parametrize("provider", sorted(p for p in CASES if CASES[p]["rerun"]))
def test_rerun_attempt_gets_a_different_identifier(provider: str) -> None:
    case = CASES[provider]
    rerun = {**case["env"], **case["rerun"]}
    assert ci_run_identifier(rerun) != ci_run_identifier(case["env"])
    # ...and the shards of that re-run agree with each other again.
    rerun_shard = {**rerun, **case["shard"]}
    assert ci_run_identifier(rerun_shard) == ci_run_identifier(rerun)


@pytest.mark.parametrize("provider", ["gitlab", "travis"])
def test_providers_without_attempts_keep_the_identifier_on_retry(provider: str) -> None:
    # Documented limitation: the retried job rejoins the original build run.
    case = CASES[provider]
    retried = {**case["env"], **case["shard"]}
    assert ci_run_identifier(retried) == case["run_id"]


def test_github_rerun_points_url_at_the_attempt() -> None:
    env = {**CASES["github"]["env"], "GITHUB_RUN_ATTEMPT": "3"}
    info = detect_ci(env)
    assert info["url"].endswith("/actions/runs/9876543210/attempts/3")
    assert ci_run_identifier(env) == "gha-9876543210-3"


def test_github_enterprise_server_url_and_missing_attempt() -> None:
    env = {**CASES["github"]["env"], "GITHUB_SERVER_URL": "https://git.acme.example/"}
    del env["GITHUB_RUN_ATTEMPT"]  # GitHub Enterprise Server before 3.5
    info = detect_ci(env)
    assert info["build_url"] == "https://git.acme.example/acme/shop/actions/runs/9876543210"
    assert info["url"] == info["build_url"]
    assert ci_run_identifier(env) == "gha-9876543210"


def test_azure_classic_pipeline_without_job_attempt() -> None:
    env = {k: v for k, v in CASES["azure"]["env"].items() if k != "SYSTEM_JOBATTEMPT"}
    assert ci_run_identifier(env) == "azure-4242"
    fallback = {k: v for k, v in env.items() if k != "SYSTEM_COLLECTIONURI"}
    assert detect_ci(fallback)["build_url"] == CASES["azure"]["info"]["build_url"]


def test_gitlab_job_name_keeps_non_parallel_names() -> None:
    env = {**CASES["gitlab"]["env"], "CI_JOB_NAME": "e2e 2024/25"}
    del env["CI_NODE_TOTAL"]
    assert detect_ci(env)["job_name"] == "e2e 2024/25"


def test_codebuild_region_from_arn_and_public_url() -> None:
    env = {
        k: v
        for k, v in CASES["codebuild"]["env"].items()
        if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")
    }
    env["CODEBUILD_PUBLIC_BUILD_URL"] = "https://public.example/build/1"
    info = detect_ci(env)
    assert info["build_url"] == CASES["codebuild"]["info"]["build_url"]
    assert info["url"] == "https://public.example/build/1"


def test_jenkins_without_build_tag_uses_job_name_and_number() -> None:
    env = {k: v for k, v in CASES["jenkins"]["env"].items() if k != "BUILD_TAG"}
    assert ci_run_identifier(env) == "jenkins-shop-main-57"


def test_long_jenkins_tag_is_cut_to_64_chars_and_stays_distinct() -> None:
    base = {**CASES["jenkins"]["env"], "JOB_NAME": "x" * 120}
    first = ci_run_identifier({**base, "BUILD_TAG": "jenkins-" + "x" * 120 + "-57"})
    second = ci_run_identifier({**base, "BUILD_TAG": "jenkins-" + "x" * 120 + "-58"})
    assert len(first) == RUN_IDENTIFIER_MAX and len(second) == RUN_IDENTIFIER_MAX
    assert first != second
    assert first.startswith("jenkins-xxx")
    # Deterministic: every shard computes the same value.
    assert first == ci_run_identifier({**base, "BUILD_TAG": "jenkins-" + "x" * 120 + "-57"})


def test_unsafe_characters_are_replaced() -> None:
    env = {**CASES["jenkins"]["env"], "BUILD_TAG": "jenkins-Web Shop/Größe-57"}
    assert ci_run_identifier(env) == "jenkins-Web-Shop-Gr-e-57"


def test_teamcity_wins_over_a_leaked_jenkins_variable() -> None:
    env = {**CASES["teamcity"]["env"], "JENKINS_HOME": "/var/jenkins_home"}
    assert detect_ci(env)["name"] == "TeamCity"


def test_build_number_alone_is_not_ci() -> None:
    # Both Jenkins and TeamCity set BUILD_NUMBER; by itself it identifies neither.
    assert detect_ci({"BUILD_NUMBER": "12"}) is None
    assert ci_run_identifier({"BUILD_NUMBER": "12"}) is None
    assert detect_ci({"JENKINS_HOME": "/var/jenkins_home"}) is None


def test_jenkins_detected_by_build_tag_alone() -> None:
    assert detect_ci({"BUILD_TAG": "jenkins-shop-9", "BUILD_NUMBER": "9"})["name"] == "Jenkins"


def test_generic_ci_true() -> None:
    assert detect_ci({"CI": "true"}) == {"name": "CI"}
    assert detect_ci({"CI": "1"}) == {"name": "CI"}
    assert ci_run_identifier({"CI": "true"}) is None
    assert is_ci({"CI": "true"}) is True


@pytest.mark.parametrize("value", ["false", "0", "", "  ", "no"])
def test_ci_false_or_empty_is_not_ci(value: str) -> None:
    assert detect_ci({"CI": value}) is None
    assert is_ci({"CI": value}) is False


def test_no_ci() -> None:
    assert detect_ci({}) is None
    assert ci_run_identifier({}) is None
    assert is_ci({"HOME": "/home/me", "PATH": "/usr/bin"}) is False


def test_github_actions_false_is_not_github() -> None:
    assert detect_ci({"GITHUB_ACTIONS": "false", "CI": "true"}) == {"name": "CI"}


def test_empty_values_are_left_out() -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_RUN_ID": "", "GITHUB_REPOSITORY": "acme/shop"}
    assert detect_ci(env) == {"name": "GitHub Actions"}
    assert ci_run_identifier(env) is None


_NAMES = sorted({name for case in CASES.values() for name in case["env"]} | {"CI"})


@settings(max_examples=200, deadline=None)
@given(st.dictionaries(st.sampled_from(_NAMES), st.text(max_size=300), max_size=len(_NAMES)))
def test_any_environment_gives_valid_output(env: dict[str, str]) -> None:
    info = detect_ci(env)
    identifier = ci_run_identifier(env)
    assert info is None or (info["name"] and all(isinstance(v, str) and v for v in info.values()))
    assert identifier is None or SAFE_ID.fullmatch(identifier)
    assert identifier is None or info is not None
