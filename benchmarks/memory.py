"""Peak memory of this process and its child processes, sampled in a thread (psutil).

Two sums are reported, because they answer different questions:

* **RSS** (resident set size) summed over the processes counts every page each process has
  in memory, so pages that worker processes share (a forked worker shares its parent's
  interpreter, libraries and imported modules until it writes to them) count once per
  process: an upper bound, and what most tools show.
* **PSS** (proportional set size, Linux) splits each shared page among the processes that
  share it, so the sum is the memory the whole run occupies: what must fit on the machine.
  Reading it costs ~0.5 ms per process, so it is sampled less often than RSS.
"""

from __future__ import annotations

import threading

__all__ = ["PeakMemory"]


class PeakMemory:
    """Context manager sampling memory every *interval* seconds (PSS every *pss_every*-th
    sample). After the block: ``peak_rss_total``, ``peak_rss_self`` and ``peak_pss_total``
    in bytes (``peak_pss_total`` is None where PSS cannot be read); ``available`` is False
    without psutil (all figures None)."""

    def __init__(self, interval: float = 0.05, pss_every: int = 5) -> None:
        try:
            import psutil
        except ImportError:
            psutil = None
        self.psutil = psutil
        self.available = psutil is not None
        self.interval = interval
        self.pss_every = max(1, pss_every)
        self.peak_rss_total: int | None = 0 if psutil else None
        self.peak_rss_self: int | None = 0 if psutil else None
        self.peak_pss_total: int | None = None
        self._pss_ok = psutil is not None
        self._n = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _processes(self) -> list:
        me = self.psutil.Process()
        try:
            return [me, *me.children(recursive=True)]
        except self.psutil.Error:
            return [me]

    def _sample(self, pss: bool = False) -> None:
        psutil = self.psutil
        procs = self._processes()
        rss = 0
        for i, p in enumerate(procs):
            try:
                r = p.memory_info().rss
            except psutil.Error:      # a worker that has just exited
                continue
            rss += r
            if i == 0:
                self.peak_rss_self = max(self.peak_rss_self, r)
        self.peak_rss_total = max(self.peak_rss_total, rss)
        if self._pss_ok and (pss or self._n % self.pss_every == 0):
            pss = 0
            for p in procs:
                try:
                    pss += p.memory_full_info().pss
                except AttributeError:        # no PSS on this platform
                    self._pss_ok = False
                    return
                except psutil.Error:
                    continue
            self.peak_pss_total = max(self.peak_pss_total or 0, pss)
        self._n += 1

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def __enter__(self) -> PeakMemory:
        if self.available:
            self._sample()
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.available:
            self._stop.set()
            self._thread.join()
            self._sample(pss=True)

    @staticmethod
    def mb(value: int | None) -> float | None:
        """Bytes to MB (None stays None)."""
        return None if value is None else round(value / 2**20, 1)
