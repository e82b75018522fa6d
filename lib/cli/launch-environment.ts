/**
 * The environment the `sluice` command starts Node with (main.ts's first lines, a shell launcher, set it; this
 * module states it for processes started otherwise, such as the Nexmark runner's measured runs).
 *
 * glibc's `hugetlb=1` tunable makes malloc ask for transparent huge pages (madvise) on the memory it maps, so a
 * large buffer is backed by 2 MiB pages, faulted in one at a time, instead of 4 KiB ones. Streaming jobs write
 * hundreds of megabytes of fresh buffers a batch (generated or decoded columns, state records, delta files), and
 * on virtual machines each 4 KiB first touch is a costly exit to the hypervisor: Nexmark q18 takes 1.14× fewer
 * CPU seconds with it (BENCHMARKS.md). Other C libraries (musl) and systems ignore the variable; a user's own
 * `GLIBC_TUNABLES` comes after this one, so `glibc.malloc.hugetlb=0` there turns it off.
 */

/** The glibc tunable the `sluice` command starts Node with. */
export const HUGE_PAGE_TUNABLE = 'glibc.malloc.hugetlb=1';

/** `env` as the `sluice` command passes it to Node: {@link HUGE_PAGE_TUNABLE} ahead of the user's tunables. */
export function launchEnvironment(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const own = env.GLIBC_TUNABLES;
  return { ...env, GLIBC_TUNABLES: own ? `${HUGE_PAGE_TUNABLE}:${own}` : HUGE_PAGE_TUNABLE };
}
