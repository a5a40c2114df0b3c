"""Which CI service ran this process, read from its documented environment variables.

Two answers per provider (see docs/where-the-build-ran.md for the table):

* ``detect_ci`` -> the ``ci_info`` object of "start build" (tra-api.md §2.1).
* ``ci_run_identifier`` -> a ``build_run_identifier`` shared by every shard/job of one
  pipeline run and attempt, so shards on several machines land in one build run.

Everything here is a pure function of the mapping passed in (normally ``os.environ``):
no I/O, no exceptions for odd values.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from urllib.parse import quote

__all__ = ["detect_ci", "ci_run_identifier", "is_ci", "RUN_IDENTIFIER_MAX"]

RUN_IDENTIFIER_MAX = 64  # tra-api.md §2.1: build_run_identifier ≤ 64 chars

_FALSE = {"", "0", "false", "no", "off"}


class _Env:
    """Read-only view that treats unset, empty and whitespace-only values alike."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def get(self, name: str) -> str | None:
        try:
            value = self._environ.get(name)
        except Exception:  # an exotic Mapping must not break the caller
            return None
        if not isinstance(value, str):
            return None
        value = value.strip()
        return value or None

    def flag(self, name: str) -> bool:
        value = self.get(name)
        return value is not None and value.lower() not in _FALSE

    def first(self, *names: str) -> str | None:
        for name in names:
            value = self.get(name)
            if value:
                return value
        return None


def _info(**fields: str | None) -> dict[str, str]:
    # "Only keys with values": the API gets no nulls or empty strings.
    return {key: value for key, value in fields.items() if value}


def _fit(identifier: str) -> str:
    """Make an identifier safe to send: a plain charset and at most 64 chars.

    Deterministic, so every shard computing it from the same variables agrees; a
    too-long value keeps a readable head and ends with a digest of the whole value,
    so two long identifiers that share a head stay different.
    """
    safe = re.sub(r"[^A-Za-z0-9._-]+", "-", identifier).strip("-") or "ci"
    if len(safe) <= RUN_IDENTIFIER_MAX:
        return safe
    import hashlib  # rarely needed: kept off the import of every run

    digest = hashlib.sha256(identifier.encode("utf-8")).hexdigest()[:16]
    head = safe[: RUN_IDENTIFIER_MAX - len(digest) - 1].rstrip("-")
    return f"{head}-{digest}"


def _join(*parts: str | None) -> str | None:
    """'prefix-a-b' from the parts present, or None when the first (the run id) is missing."""
    if len(parts) < 2 or not parts[1]:
        return None
    return _fit("-".join(part for part in parts if part))


# --- providers, in detection order ---------------------------------------------------
# Each provider is detected by a variable only it sets. Jenkins and TeamCity both set
# BUILD_NUMBER, so neither is detected by it; Jenkins comes last among the named
# providers because JENKINS_HOME can leak into shells on machines that merely host Jenkins.


def _github_detect(env: _Env) -> bool:
    return env.get("GITHUB_ACTIONS") == "true"


def _github_info(env: _Env) -> dict[str, str]:
    server = (env.get("GITHUB_SERVER_URL") or "https://github.com").rstrip("/")
    repo, run_id = env.get("GITHUB_REPOSITORY"), env.get("GITHUB_RUN_ID")
    attempt = env.get("GITHUB_RUN_ATTEMPT")
    build_url = f"{server}/{repo}/actions/runs/{run_id}" if repo and run_id else None
    url = f"{build_url}/attempts/{attempt}" if build_url and attempt else build_url
    return _info(
        name="GitHub Actions",
        build_url=build_url,
        url=url,
        build_number=env.get("GITHUB_RUN_NUMBER"),
        job_name=env.get("GITHUB_WORKFLOW"),
    )


def _github_run(env: _Env) -> str | None:
    # One run id for every job of a workflow run (matrix included); a re-run (all jobs
    # or failed jobs only) keeps the run id and increments GITHUB_RUN_ATTEMPT.
    return _join("gha", env.get("GITHUB_RUN_ID"), env.get("GITHUB_RUN_ATTEMPT"))


def _gitlab_detect(env: _Env) -> bool:
    return env.flag("GITLAB_CI")


def _gitlab_info(env: _Env) -> dict[str, str]:
    job = env.get("CI_JOB_NAME")
    if job and env.get("CI_NODE_TOTAL"):
        # `parallel: N` names its jobs "rspec 1/3", "rspec 2/3": report the job, not the slice.
        job = re.sub(r"\s+\d+/\d+$", "", job) or job
    return _info(
        name="GitLab CI",
        build_url=env.get("CI_PIPELINE_URL"),
        url=env.get("CI_JOB_URL") or env.get("CI_PIPELINE_URL"),
        build_number=env.get("CI_PIPELINE_ID"),
        job_name=job,
    )


def _gitlab_run(env: _Env) -> str | None:
    # GitLab exposes no attempt counter: a retried job keeps CI_PIPELINE_ID.
    return _join("gitlab", env.get("CI_PIPELINE_ID"))


def _circle_detect(env: _Env) -> bool:
    return env.flag("CIRCLECI")


def _circle_info(env: _Env) -> dict[str, str]:
    return _info(
        name="CircleCI",
        build_url=env.get("CIRCLE_BUILD_URL"),
        url=env.get("CIRCLE_BUILD_URL"),
        build_number=env.get("CIRCLE_BUILD_NUM"),
        job_name=env.get("CIRCLE_JOB"),
    )


def _circle_run(env: _Env) -> str | None:
    # Every job and parallel node of a workflow shares CIRCLE_WORKFLOW_ID; "rerun
    # workflow" (from start or from failed) creates a new workflow with a new id.
    return _join("circleci", env.get("CIRCLE_WORKFLOW_ID"))


def _azure_detect(env: _Env) -> bool:
    return env.flag("TF_BUILD")


def _azure_info(env: _Env) -> dict[str, str]:
    collection = env.first("SYSTEM_COLLECTIONURI", "SYSTEM_TEAMFOUNDATIONCOLLECTIONURI")
    project, build_id = env.get("SYSTEM_TEAMPROJECT"), env.get("BUILD_BUILDID")
    build_url = None
    if collection and project and build_id:
        build_url = (
            f"{collection.rstrip('/')}/{quote(project, safe='')}"
            f"/_build/results?buildId={quote(build_id, safe='')}"
        )
    job_id = env.get("SYSTEM_JOBID")
    url = f"{build_url}&view=logs&j={quote(job_id, safe='')}" if build_url and job_id else None
    return _info(
        name="Azure Pipelines",
        build_url=build_url,
        url=url or build_url,
        build_number=env.get("BUILD_BUILDNUMBER"),
        job_name=env.get("BUILD_DEFINITIONNAME"),
    )


def _azure_run(env: _Env) -> str | None:
    # Jobs of one run share BUILD_BUILDID; a retried job gets SYSTEM_JOBATTEMPT 2, 3, ...
    return _join("azure", env.get("BUILD_BUILDID"), env.get("SYSTEM_JOBATTEMPT"))


def _bitbucket_detect(env: _Env) -> bool:
    return env.get("BITBUCKET_BUILD_NUMBER") is not None


def _bitbucket_info(env: _Env) -> dict[str, str]:
    repo, number = env.get("BITBUCKET_REPO_FULL_NAME"), env.get("BITBUCKET_BUILD_NUMBER")
    build_url = f"https://bitbucket.org/{repo}/pipelines/results/{number}" if repo else None
    step = env.get("BITBUCKET_STEP_UUID")
    url = f"{build_url}/steps/{quote(step, safe='')}" if build_url and step else build_url
    return _info(name="Bitbucket Pipelines", build_url=build_url, url=url, build_number=number)


def _bitbucket_run(env: _Env) -> str | None:
    # Parallel steps share the build number and pipeline UUID; a rerun is a new build
    # with a new number. The UUID makes the value unique across repositories.
    pipeline = (env.get("BITBUCKET_PIPELINE_UUID") or "").strip("{}") or None
    return _join("bitbucket", env.get("BITBUCKET_BUILD_NUMBER"), pipeline)


def _buildkite_detect(env: _Env) -> bool:
    return env.flag("BUILDKITE")


def _buildkite_info(env: _Env) -> dict[str, str]:
    build_url, job_id = env.get("BUILDKITE_BUILD_URL"), env.get("BUILDKITE_JOB_ID")
    return _info(
        name="Buildkite",
        build_url=build_url,
        url=f"{build_url}#{job_id}" if build_url and job_id else build_url,
        build_number=env.get("BUILDKITE_BUILD_NUMBER"),
        job_name=env.first("BUILDKITE_PIPELINE_NAME", "BUILDKITE_PIPELINE_SLUG"),
    )


def _buildkite_run(env: _Env) -> str | None:
    # All jobs of a build share BUILDKITE_BUILD_ID; a retried job keeps it and gets
    # BUILDKITE_RETRY_COUNT 1, 2, ... (automatic retries included).
    retries = env.get("BUILDKITE_RETRY_COUNT") or "0"
    return _join("buildkite", env.get("BUILDKITE_BUILD_ID"), retries)


def _teamcity_detect(env: _Env) -> bool:
    return env.get("TEAMCITY_VERSION") is not None


def _teamcity_info(env: _Env) -> dict[str, str]:
    names = [env.get("TEAMCITY_PROJECT_NAME"), env.get("TEAMCITY_BUILDCONF_NAME")]
    return _info(
        name="TeamCity",
        build_number=env.get("BUILD_NUMBER"),
        job_name=" / ".join(name for name in names if name) or None,
    )


def _teamcity_run(env: _Env) -> str | None:
    # TeamCity exports no build id or URL as environment variables; the build number is
    # per build configuration, so the configuration's names qualify it.
    number = env.get("BUILD_NUMBER")
    if not number:
        return None
    return _fit(
        "-".join(
            part
            for part in (
                "teamcity",
                env.get("TEAMCITY_PROJECT_NAME"),
                env.get("TEAMCITY_BUILDCONF_NAME"),
                number,
            )
            if part
        )
    )


def _travis_detect(env: _Env) -> bool:
    return env.flag("TRAVIS")


def _travis_info(env: _Env) -> dict[str, str]:
    return _info(
        name="Travis CI",
        build_url=env.get("TRAVIS_BUILD_WEB_URL"),
        url=env.get("TRAVIS_JOB_WEB_URL") or env.get("TRAVIS_BUILD_WEB_URL"),
        build_number=env.get("TRAVIS_BUILD_NUMBER"),
        job_name=env.get("TRAVIS_JOB_NAME"),
    )


def _travis_run(env: _Env) -> str | None:
    # Jobs of a build share TRAVIS_BUILD_ID; a restarted job or build keeps it (no attempt).
    return _join("travis", env.get("TRAVIS_BUILD_ID"))


def _codebuild_detect(env: _Env) -> bool:
    return env.get("CODEBUILD_BUILD_ID") is not None


def _codebuild_region(env: _Env) -> str | None:
    region = env.first("AWS_REGION", "AWS_DEFAULT_REGION")
    if region:
        return region
    # arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>
    arn = (env.get("CODEBUILD_BUILD_ARN") or "").split(":")
    return (arn[3] or None) if len(arn) > 3 else None


def _codebuild_info(env: _Env) -> dict[str, str]:
    build_id = env.get("CODEBUILD_BUILD_ID") or ""
    project = build_id.partition(":")[0] or None
    region = _codebuild_region(env)
    build_url = None
    if project and region:
        build_url = (
            f"https://{region}.console.aws.amazon.com/codesuite/codebuild/projects/"
            f"{quote(project, safe='')}/build/{quote(build_id, safe='')}/?region={region}"
        )
    return _info(
        name="AWS CodeBuild",
        build_url=build_url,
        url=env.get("CODEBUILD_PUBLIC_BUILD_URL") or build_url,
        build_number=env.get("CODEBUILD_BUILD_NUMBER"),
        job_name=project,
    )


def _codebuild_run(env: _Env) -> str | None:
    # "project:uuid" is per build; the builds of a batch each have their own and CodeBuild
    # exports no batch-wide id, so batch shards need BROWSERSTACK_BUILD_RUN_IDENTIFIER.
    build_id = env.get("CODEBUILD_BUILD_ID") or ""
    project, _, uuid = build_id.partition(":")
    return _join("codebuild", uuid or project or None)


def _jenkins_detect(env: _Env) -> bool:
    server = env.first("JENKINS_URL", "HUDSON_URL", "JENKINS_HOME")
    build = env.first("BUILD_TAG", "BUILD_NUMBER", "BUILD_URL")
    tag = env.get("BUILD_TAG") or ""
    return bool(server and build) or tag.startswith("jenkins-")


def _jenkins_info(env: _Env) -> dict[str, str]:
    return _info(
        name="Jenkins",
        build_url=env.get("BUILD_URL"),
        url=env.get("BUILD_URL"),
        build_number=env.get("BUILD_NUMBER"),
        job_name=env.get("JOB_NAME"),
    )


def _jenkins_run(env: _Env) -> str | None:
    # BUILD_TAG = "jenkins-${JOB_NAME}-${BUILD_NUMBER}": the same in every parallel
    # stage/agent of one build; a replay or rebuild is a new build number.
    tag = env.get("BUILD_TAG")
    if tag:
        return _fit(tag)
    job, number = env.get("JOB_NAME"), env.get("BUILD_NUMBER")
    return _fit(f"jenkins-{job.replace('/', '-')}-{number}") if job and number else None


@dataclass(frozen=True)
class _Provider:
    detect: Callable[[_Env], bool]
    info: Callable[[_Env], dict[str, str]]
    run: Callable[[_Env], str | None]


_PROVIDERS: tuple[_Provider, ...] = (
    _Provider(_github_detect, _github_info, _github_run),
    _Provider(_gitlab_detect, _gitlab_info, _gitlab_run),
    _Provider(_circle_detect, _circle_info, _circle_run),
    _Provider(_azure_detect, _azure_info, _azure_run),
    _Provider(_bitbucket_detect, _bitbucket_info, _bitbucket_run),
    _Provider(_buildkite_detect, _buildkite_info, _buildkite_run),
    _Provider(_teamcity_detect, _teamcity_info, _teamcity_run),
    _Provider(_travis_detect, _travis_info, _travis_run),
    _Provider(_codebuild_detect, _codebuild_info, _codebuild_run),
    _Provider(_jenkins_detect, _jenkins_info, _jenkins_run),
)


def _provider(env: _Env) -> _Provider | None:
    for provider in _PROVIDERS:
        if provider.detect(env):
            return provider
    return None


def detect_ci(environ: Mapping[str, str]) -> dict[str, str] | None:
    """``ci_info`` for start build, or None when not running in CI.

    Keys (only those with values): name, build_url, url, build_number, job_name.
    ``build_url`` is the run/pipeline page; ``url`` the most specific page for this
    process (its job or step), falling back to ``build_url``.
    """
    env = _Env(environ)
    provider = _provider(env)
    if provider is not None:
        return provider.info(env)
    if env.flag("CI"):
        return {"name": "CI"}
    return None


def ci_run_identifier(environ: Mapping[str, str]) -> str | None:
    """A build_run_identifier (≤64 chars) that every shard of one CI run and attempt shares.

    None when not in CI or when the CI does not identify a run (generic ``CI=true``).
    """
    env = _Env(environ)
    provider = _provider(env)
    return provider.run(env) if provider is not None else None


def is_ci(environ: Mapping[str, str]) -> bool:
    """True when a known CI provider or a truthy ``CI`` variable is present."""
    return detect_ci(environ) is not None
