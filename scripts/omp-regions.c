// omp-regions.c: counts libgomp parallel regions by call site, for finding
// what wakes libtorch's sleeping threads (docs/cpu.md). Under
// OMP_WAIT_POLICY=PASSIVE, dialogbot's default, every region wakes them,
// which costs tens of microseconds on a small VM.
//
//   gcc -O2 -shared -fPIC -o /tmp/omp-regions.so scripts/omp-regions.c -ldl
//   LD_PRELOAD=/tmp/omp-regions.so bin/dialogbot bench --model M --device cpu \
//       --concurrency 1 --requests 8 --warmup 0 --new-tokens 32 --threads 2
//   sort -rn /tmp/omp-regions.txt | c++filt | cut -c1-300 | head -20
//
// Each line: calls, then the exported functions on the call stack (nearest
// first). The table is written every 1,000 regions ($OMP_REGIONS_OUT,
// default /tmp/omp-regions.txt), since Go exits without running atexit.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <execinfo.h>
#include <stdio.h>
#include <stdlib.h>

typedef void (*region_fn)(void *);

#define SITES 1024
static unsigned long site_key[SITES];
static long site_calls[SITES];
static char site_stack[SITES][4096];
static long regions;

static void write_table(void) {
  const char *path = getenv("OMP_REGIONS_OUT");
  FILE *f = fopen(path ? path : "/tmp/omp-regions.txt", "w");
  if (f == NULL) return;
  for (int i = 0; i < SITES; i++) {
    if (site_key[i]) fprintf(f, "%8ld %s\n", site_calls[i], site_stack[i]);
  }
  fclose(f);
}

static void describe(char *out, void **frames, int n) {
  char *p = out, *end = out + sizeof site_stack[0] - 200;
  for (int j = 1; j < n && p < end; j++) {
    Dl_info d;
    if (dladdr(frames[j], &d) && d.dli_sname) p += snprintf(p, end + 200 - p, " <%s", d.dli_sname);
  }
}

void GOMP_parallel(region_fn fn, void *data, unsigned threads, unsigned flags) {
  static void (*real)(region_fn, void *, unsigned, unsigned);
  if (real == NULL) real = (void (*)(region_fn, void *, unsigned, unsigned))dlsym(RTLD_NEXT, "GOMP_parallel");
  void *frames[16];
  int n = backtrace(frames, 16);
  unsigned long key = 1469598103934665603UL;  // FNV-1a over the return addresses
  for (int j = 1; j < n; j++) key = (key ^ (unsigned long)frames[j]) * 1099511628211UL;
  int i = key % SITES;
  while (site_key[i] && site_key[i] != key) i = (i + 1) % SITES;
  if (!site_key[i]) {
    site_key[i] = key;
    describe(site_stack[i], frames, n);
  }
  site_calls[i]++;
  real(fn, data, threads, flags);
  if (++regions % 1000 == 0) write_table();
}
