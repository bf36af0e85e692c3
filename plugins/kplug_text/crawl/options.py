"""`CrawlConfig`: the crawler's options, validated before anything is fetched."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import (
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    ValidationInfo,
    field_validator,
)

import kplug
from kplug_text.crawl.urls import hostname, in_domains, url_problem

USER_AGENT = "kplug-web-crawl/0.1"
DEFAULT_CACHE = "~/.cache/kplug/web_crawl"


class CrawlConfig(kplug.Config):
    seeds: list[str] = Field(
        min_length=1, description="start URLs (http or https); the crawl is breadth-first"
    )
    allow_domains: list[str] = Field(
        [],
        description="host names the crawl may visit (subdomains included), e.g. "
        "[docs.python.org]; empty: the hosts of the seeds",
    )
    max_pages: PositiveInt = Field(100, description="stop after this many HTML pages")
    max_depth: NonNegativeInt = Field(
        3, description="follow links at most this many clicks away from a seed"
    )
    rate_limit_per_host: PositiveFloat = Field(
        1.0,
        description="at most this many requests per second to one host; a robots.txt "
        "Crawl-delay or Request-rate that asks for less wins",
    )
    timeout_s: PositiveFloat = Field(10.0, description="timeout of one request, in seconds")
    user_agent: str = Field(
        USER_AGENT,
        min_length=1,
        description="User-Agent header, also the name matched against robots.txt rules",
    )
    cache_dir: str | None = Field(
        DEFAULT_CACHE,
        description="folder of fetched pages and headers; a second crawl reads it instead "
        "of the network; null: no cache",
    )
    refresh_cache: bool = Field(False, description="fetch every page again, updating the cache")
    max_retries: NonNegativeInt = Field(
        3, description="retries of a connection error, timeout, 429 or 5xx response"
    )
    retry_backoff_s: NonNegativeFloat = Field(
        1.0, description="first retry wait in seconds, doubled at each retry"
    )
    max_page_bytes: PositiveInt = Field(
        2_000_000, description="skip pages whose body is larger (streamed, cut when exceeded)"
    )
    favor: Literal["balanced", "precision", "recall"] = Field(
        "balanced",
        description="trafilatura main-text extraction: less but surer text (precision) or "
        "more text (recall)",
    )
    include_tables: bool = Field(True, description="keep the text of tables in the main text")
    min_characters: NonNegativeInt = Field(
        100, description="skip pages whose extracted main text is shorter"
    )

    @field_validator("seeds")
    @classmethod
    def _seeds_are_urls(cls, seeds: list[str]) -> list[str]:
        for index, seed in enumerate(seeds):
            problem = url_problem(seed)
            if problem:
                raise ValueError(
                    f"seeds[{index}] {seed!r} is {problem}; give a full address such as "
                    "https://docs.python.org/3/tutorial/"
                )
        return seeds

    @field_validator("allow_domains")
    @classmethod
    def _domains_are_hosts_around_the_seeds(
        cls, domains: list[str], info: ValidationInfo
    ) -> list[str]:
        for domain in domains:
            if url_problem(f"http://{domain}/") or hostname(f"http://{domain}/") != domain.lower():
                raise ValueError(
                    f"allow_domains entry {domain!r} is not a host name; write the host only, "
                    "e.g. docs.python.org (no scheme, port or path)"
                )
        domains = [d.lower() for d in domains]
        # Checked here rather than in a model validator so the error points at this key;
        # `seeds` is declared first, so it is validated (and present) when valid.
        outside = [s for s in info.data.get("seeds", []) if domains and not in_domains(s, domains)]
        if outside:
            raise ValueError(
                f"seed {outside[0]!r} is outside allow_domains {domains}; add "
                f"{hostname(outside[0])!r} to allow_domains or remove the seed"
            )
        return domains

    @property
    def domains(self) -> list[str]:
        """The allowed hosts: `allow_domains`, or the seeds' hosts when it is empty."""
        return self.allow_domains or sorted({hostname(s) for s in self.seeds})

    @property
    def cache_path(self) -> Path | None:
        return Path(self.cache_dir).expanduser() if self.cache_dir else None
