/* The C side of the httpd boundary: what bindgen cannot see (macros) wrapped
 * in plain functions, plus the declarations of the Rust entry points that the
 * module struct (module.rs) and command table (commands.rs) point at. */
#ifndef WSGI_RS_SHIM_H
#define WSGI_RS_SHIM_H

#include "httpd.h"
#include "http_config.h"
#include "util_cfgtree.h"
#include "http_core.h"
#include "http_log.h"
#include "http_protocol.h"
#include "http_request.h"
#include "ap_mpm.h"
#include "util_filter.h"
#include "util_script.h"
#include "ap_listen.h"
#include "mpm_common.h"
#include "unixd.h"
#include "apr_thread_proc.h"
#include "apr_strings.h"
#include "apr_tables.h"
#include "apr_buckets.h"
#include "mod_auth.h"

/* Implemented in Rust (src/httpd/hooks.rs). */
void *wsgi_rs_create_server_config(apr_pool_t *p, server_rec *s);
void *wsgi_rs_merge_server_config(apr_pool_t *p, void *base, void *add);
void *wsgi_rs_create_dir_config(apr_pool_t *p, char *dir);
void *wsgi_rs_merge_dir_config(apr_pool_t *p, void *base, void *add);
int wsgi_rs_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp, server_rec *s);
void wsgi_rs_child_init(apr_pool_t *p, server_rec *s);
int wsgi_rs_translate_name(request_rec *r);
int wsgi_rs_handler(request_rec *r);
int wsgi_rs_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
int wsgi_rs_fixups(request_rec *r);
int wsgi_rs_monitor(apr_pool_t *p, server_rec *s);

/* Implemented in Rust (src/httpd/auth.rs): the `wsgi` authn provider, the
 * `wsgi-group` authz provider and the WSGIAccessScript access checker. */
authn_status wsgi_rs_check_password(request_rec *r, const char *user, const char *password);
authn_status wsgi_rs_get_realm_hash(request_rec *r, const char *user, const char *realm,
                                    char **rethash);
authz_status wsgi_rs_check_authorization(request_rec *r, const char *require_args,
                                         const void *parsed_require_line);
int wsgi_rs_access_checker(request_rec *r);

/* Implemented in shim.c. */
void wsgi_rs_register_hooks(apr_pool_t *p);
void *wsgi_rs_server_config(const server_rec *s);
void *wsgi_rs_dir_config(const request_rec *r);
int wsgi_rs_log_enabled(const server_rec *s, int level);
void wsgi_rs_log_server(const char *file, int line, int level, const server_rec *s, const char *msg);
void wsgi_rs_log_request(const char *file, int line, int level, const request_rec *r, const char *msg);
apr_bucket_brigade *wsgi_rs_brigade_new(request_rec *r);
apr_status_t wsgi_rs_read_body(request_rec *r, apr_bucket_brigade *bb, char *buf, apr_size_t len,
                               apr_size_t *got);
apr_status_t wsgi_rs_write(request_rec *r, apr_bucket_brigade *bb, const char *data, apr_size_t len,
                           int flush);
apr_status_t wsgi_rs_send_file(request_rec *r, apr_bucket_brigade *bb, int fd, apr_off_t offset,
                               apr_size_t len, int sendfile);
void wsgi_rs_abort_connection(request_rec *r);
int wsgi_rs_has_content_filters(const request_rec *r);
const char *wsgi_rs_directive_name(const cmd_parms *cmd);
const char *wsgi_rs_check_global(cmd_parms *cmd);
apr_time_t wsgi_rs_finfo_mtime(const request_rec *r);
int wsgi_rs_finfo_filetype(const request_rec *r);
int wsgi_rs_finfo_owner(const request_rec *r, unsigned int *uid, unsigned int *gid,
                        int *group_writable, int *world_writable);
const char *wsgi_rs_proxy_uds_path(request_rec *r);
const char *wsgi_rs_remote_host(request_rec *r);
int wsgi_rs_config_names(const char *word);
int wsgi_rs_tunnel_begin(request_rec *r, const char *status_line, apr_interval_time_t *timeout);
int wsgi_rs_tunnel_read(request_rec *r, apr_bucket_brigade *bb, char *buf, apr_size_t len,
                        apr_size_t *got);
apr_status_t wsgi_rs_tunnel_write(request_rec *r, apr_bucket_brigade *bb, const char *data,
                                  apr_size_t len);
int wsgi_rs_older_children_alive(void);
int wsgi_rs_restart_pending(void);

#endif
