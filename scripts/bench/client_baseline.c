/* The practical ceiling for the client benchmark: COUNT job creates (PUT) with
   CONCURRENCY in flight on one libcurl multi handle, bodies and URLs built
   before the clock starts, responses read and dropped.  Built and run by
   scripts/bench/client.sh:
     client_baseline URL TOKEN EXPERIMENT_PATH COUNT CONCURRENCY
   Prints "created N in S s" and exits non-zero if any answer was not 2xx. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

static size_t discard(char *data, size_t size, size_t n, void *ud) {
  (void)data;
  (void)ud;
  return size * n;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: %s URL TOKEN EXPERIMENT_PATH COUNT CONCURRENCY\n", argv[0]);
    return 2;
  }
  const char *base = argv[1], *token = argv[2], *exp = argv[3];
  int count = atoi(argv[4]), concurrency = atoi(argv[5]);
  char **urls = calloc((size_t)count, sizeof *urls), **bodies = calloc((size_t)count, sizeof *bodies);
  for (int i = 0; i < count; i++) {
    urls[i] = malloc(strlen(base) + strlen(exp) + 64);
    sprintf(urls[i], "%s%s/jobs/c%05d?api-version=2018-05-01", base, exp, i);
    bodies[i] = malloc(512);
    snprintf(bodies[i], 512,
             "{\"properties\":{\"cluster\":{\"id\":\"local\"},\"nodeCount\":1,"
             "\"stdOutErrPathPrefix\":\"$AZ_BATCHAI_MOUNT_ROOT/logs\",\"customToolkitSettings\":"
             "{\"commandLine\":\"python3 train.py --lr 0.01 --batch 64 --seed %d\"}}}", i);
  }
  char auth[4096];
  snprintf(auth, sizeof auth, "Authorization: Bearer %s", token);
  struct curl_slist *headers = curl_slist_append(NULL, auth);
  headers = curl_slist_append(headers, "Content-Type: application/json");
  headers = curl_slist_append(headers, "Accept: application/json");
  headers = curl_slist_append(headers, "Expect:");

  curl_global_init(CURL_GLOBAL_DEFAULT);
  CURLM *multi = curl_multi_init();
  CURL **easy = calloc((size_t)concurrency, sizeof *easy);
  int next = 0, done = 0, failed = 0, running = 0;
  double t0 = now();
  for (int k = 0; k < concurrency && next < count; k++) {
    easy[k] = curl_easy_init();
    curl_easy_setopt(easy[k], CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(easy[k], CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(easy[k], CURLOPT_CUSTOMREQUEST, "PUT");
    curl_easy_setopt(easy[k], CURLOPT_URL, urls[next]);
    curl_easy_setopt(easy[k], CURLOPT_POSTFIELDS, bodies[next]);
    curl_easy_setopt(easy[k], CURLOPT_PRIVATE, (char *)0 + k);
    next++;
    curl_multi_add_handle(multi, easy[k]);
  }
  while (done < count) {
    curl_multi_perform(multi, &running);
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL *e = msg->easy_handle;
      long status = 0;
      curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
      if (msg->data.result != CURLE_OK || status < 200 || status >= 300) failed++;
      done++;
      curl_multi_remove_handle(multi, e);
      if (next < count) {
        curl_easy_setopt(e, CURLOPT_URL, urls[next]);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, bodies[next]);
        next++;
        curl_multi_add_handle(multi, e);
      }
    }
    if (done < count) curl_multi_poll(multi, NULL, 0, 1000, NULL);
  }
  double elapsed = now() - t0;
  printf("created %d in %.3f s (%d failed)\n", count - failed, elapsed, failed);
  for (int k = 0; k < concurrency; k++)
    if (easy[k]) curl_easy_cleanup(easy[k]);
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  for (int i = 0; i < count; i++) {
    free(urls[i]);
    free(bodies[i]);
  }
  free(urls);
  free(bodies);
  free(easy);
  return failed ? 1 : 0;
}
