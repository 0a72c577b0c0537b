/* Hook registration of mod_wsgi_rs and thin function wrappers over httpd/APR
 * macros (logging, module config lookup, bucket brigades). Everything with
 * behaviour lives in Rust; this file only exists because these are C macros
 * bindgen cannot translate. The command table is built in Rust from the one
 * directive table (src/httpd/commands.rs). */
#include "shim.h"
#include "mod_proxy.h"
#include <dlfcn.h>
#include <string.h>
#include <stdint.h>
#include <unistd.h>
#include <signal.h>
#include "scoreboard.h"

static const authn_provider wsgi_rs_authn_provider = {
    &wsgi_rs_check_password,
    &wsgi_rs_get_realm_hash,
};

static const authz_provider wsgi_rs_authz_provider = {
    &wsgi_rs_check_authorization,
    NULL,
};

void wsgi_rs_register_hooks(apr_pool_t *p)
{
    /* Alias/Redirect take precedence over WSGIScriptAlias, as with mod_wsgi. */
    static const char *const after_alias[] = {"mod_alias.c", NULL};
    static const char *const after_ssl[] = {"mod_ssl.c", NULL};
    static const char *const before_authz_host[] = {"mod_authz_host.c", NULL};

    ap_hook_pre_config(wsgi_rs_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(wsgi_rs_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(wsgi_rs_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(wsgi_rs_translate_name, after_alias, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(wsgi_rs_handler, NULL, NULL, APR_HOOK_MIDDLE);
    /* Last, so the secret it sets replaces what SetEnv or [E=] put there. */
    ap_hook_fixups(wsgi_rs_fixups, NULL, NULL, APR_HOOK_REALLY_LAST);
    ap_hook_monitor(wsgi_rs_monitor, NULL, NULL, APR_HOOK_MIDDLE);

    /* Python-backed access control, registered as mod_wsgi registers it:
     * `AuthBasicProvider wsgi` / `AuthDigestProvider wsgi`, `Require
     * wsgi-group NAME`, and WSGIAccessScript after mod_ssl and before
     * mod_authz_host. Each returns at once where its directive is unset. */
    ap_register_auth_provider(p, AUTHN_PROVIDER_GROUP, "wsgi", AUTHN_PROVIDER_VERSION,
                              &wsgi_rs_authn_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_register_auth_provider(p, AUTHZ_PROVIDER_GROUP, "wsgi-group", AUTHZ_PROVIDER_VERSION,
                              &wsgi_rs_authz_provider, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_access_checker(wsgi_rs_access_checker, after_ssl, before_authz_host,
                           APR_HOOK_MIDDLE);
}

/* The module struct itself is defined in Rust (src/httpd/module.rs): rustc
 * only exports Rust symbols from a cdylib, and httpd must find
 * `wsgi_rs_module` with dlsym. This declaration gives the log macros below
 * the module index. */
APLOG_USE_MODULE(wsgi_rs);

void *wsgi_rs_server_config(const server_rec *s)
{
    return ap_get_module_config(s->module_config, &wsgi_rs_module);
}

void *wsgi_rs_dir_config(const request_rec *r)
{
    return ap_get_module_config(r->per_dir_config, &wsgi_rs_module);
}

int wsgi_rs_log_enabled(const server_rec *s, int level)
{
    return APLOG_MODULE_IS_LEVEL(s, APLOG_MODULE_INDEX, level);
}

/* APLOG_USE_MODULE above makes the log calls below carry this module's index and honour LogLevel wsgi_rs:LEVEL.
 * The message is always an argument, never the format: app text may hold '%'. */
void wsgi_rs_log_server(const char *file, int line, int level, const server_rec *s, const char *msg)
{
    ap_log_error_(file, line, APLOG_MODULE_INDEX, level, 0, s, "%s", msg);
}

void wsgi_rs_log_request(const char *file, int line, int level, const request_rec *r, const char *msg)
{
    ap_log_rerror_(file, line, APLOG_MODULE_INDEX, level, 0, r, "%s", msg);
}

apr_bucket_brigade *wsgi_rs_brigade_new(request_rec *r)
{
    return apr_brigade_create(r->pool, r->connection->bucket_alloc);
}

/* bb holds what the input filters handed over beyond what the caller had
 * room for: a filter may return more than the readbytes asked for (an
 * expanding mod_ext_filter does), and those bytes belong to the next read.
 * So bb must be kept for the whole request and used for nothing else. */
apr_status_t wsgi_rs_read_body(request_rec *r, apr_bucket_brigade *bb, char *buf, apr_size_t len,
                               apr_size_t *got)
{
    apr_status_t rv;
    int eos = 0;

    *got = 0;
    if (APR_BRIGADE_EMPTY(bb)) {
        rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES, APR_BLOCK_READ, len);
        if (rv != APR_SUCCESS) {
            apr_brigade_cleanup(bb);
            return rv;
        }
    }
    while (!APR_BRIGADE_EMPTY(bb) && *got < len) {
        apr_bucket *b = APR_BRIGADE_FIRST(bb);
        const char *data;
        apr_size_t n;
        if (APR_BUCKET_IS_EOS(b)) {
            /* Left in place: every later read ends here too. */
            eos = 1;
            break;
        }
        if (AP_BUCKET_IS_ERROR(b)) {
            apr_brigade_cleanup(bb);
            return AP_FILTER_ERROR;
        }
        rv = apr_bucket_read(b, &data, &n, APR_BLOCK_READ);
        if (rv != APR_SUCCESS) {
            apr_brigade_cleanup(bb);
            return rv;
        }
        if (n > len - *got) {
            /* The rest of this bucket stays for the next read. */
            n = len - *got;
            rv = apr_bucket_split(b, n);
            if (rv != APR_SUCCESS) {
                apr_brigade_cleanup(bb);
                return rv;
            }
        }
        memcpy(buf + *got, data, n);
        *got += n;
        apr_bucket_delete(b);
    }
    /* What stays waits for a later read: a transient bucket may point at a
     * buffer its filter reuses, so it is copied into the request's pool. */
    for (apr_bucket *b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
         b = APR_BUCKET_NEXT(b)) {
        rv = apr_bucket_setaside(b, r->pool);
        if (rv != APR_SUCCESS && rv != APR_ENOTIMPL) {
            apr_brigade_cleanup(bb);
            return rv;
        }
    }
    return (*got == 0 && eos) ? APR_EOF : APR_SUCCESS;
}

apr_status_t wsgi_rs_write(request_rec *r, apr_bucket_brigade *bb, const char *data, apr_size_t len,
                           int flush)
{
    apr_status_t rv;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;

    if (r->connection->aborted)
        return APR_ECONNABORTED;
    /* Transient: any filter that keeps the data past this call copies it, so
     * the caller's buffer only has to live until we return. */
    if (len > 0)
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(data, len, ba));
    if (flush)
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(ba));
    rv = ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    if (rv == APR_SUCCESS && r->connection->aborted)
        return APR_ECONNABORTED;
    return rv;
}

static apr_status_t close_fd(void *data)
{
    close((int)(intptr_t)data);
    return APR_SUCCESS;
}

/* Takes ownership of fd: it is closed with the request pool, after the core
 * output filter has finished with it (event MPM may write it asynchronously). */
apr_status_t wsgi_rs_send_file(request_rec *r, apr_bucket_brigade *bb, int fd, apr_off_t offset,
                               apr_size_t len, int sendfile)
{
    apr_file_t *file = NULL;
    apr_status_t rv;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;

    apr_pool_cleanup_register(r->pool, (void *)(intptr_t)fd, close_fd, apr_pool_cleanup_null);
    /* WSGIEnableSendfile: without the flag the core output filter reads
     * the file (or maps it) instead of handing it to sendfile(). */
    rv = apr_os_file_put(&file, &fd, APR_FOPEN_READ | (sendfile ? APR_FOPEN_SENDFILE_ENABLED : 0),
                         r->pool);
    if (rv != APR_SUCCESS)
        return rv;
    apr_brigade_insert_file(bb, file, offset, len, r->pool);
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(ba));
    rv = ap_pass_brigade(r->output_filters, bb);
    apr_brigade_cleanup(bb);
    return rv;
}

void wsgi_rs_abort_connection(request_rec *r)
{
    r->connection->keepalive = AP_CONN_CLOSE;
    r->connection->aborted = 1;
}

/* mod_wsgi's "Auto" for WSGIMapHEADToGET: only when a content filter (which
 * may need the body to compute headers) sits in the output chain. */
int wsgi_rs_has_content_filters(const request_rec *r)
{
    ap_filter_t *f;
    for (f = r->output_filters; f; f = f->next) {
        if (f->frec->ftype < AP_FTYPE_PROTOCOL)
            return 1;
    }
    return 0;
}

const char *wsgi_rs_directive_name(const cmd_parms *cmd)
{
    return cmd->cmd->name;
}

const char *wsgi_rs_check_global(cmd_parms *cmd)
{
    return ap_check_cmd_context(cmd, GLOBAL_ONLY);
}

apr_time_t wsgi_rs_finfo_mtime(const request_rec *r)
{
    return r->finfo.mtime;
}

int wsgi_rs_finfo_filetype(const request_rec *r)
{
    return r->finfo.filetype;
}

/* The owner, group and whether group and others may write r->finfo, as
 * Apache's stat of the request's file filled it (no new stat): 0, or -1
 * when that stat did not give all of them. */
int wsgi_rs_finfo_owner(const request_rec *r, unsigned int *uid, unsigned int *gid,
                        int *group_writable, int *world_writable)
{
    const apr_int32_t needed = APR_FINFO_USER | APR_FINFO_GROUP | APR_FINFO_GPROT
                               | APR_FINFO_WPROT;
    if ((r->finfo.valid & needed) != needed)
        return -1;
    *uid = (unsigned int)r->finfo.user;
    *gid = (unsigned int)r->finfo.group;
    *group_writable = (r->finfo.protection & APR_FPROT_GWRITE) != 0;
    *world_writable = (r->finfo.protection & APR_FPROT_WWRITE) != 0;
    return 0;
}

/* The UNIX socket of the proxy worker that will serve a request mod_proxy
 * mapped (r->filename "proxy:scheme://..."), or NULL. mod_proxy is optional,
 * so its worker lookup and module record are found at run time; the worker's
 * layout comes from the installed mod_proxy.h. */
const char *wsgi_rs_proxy_uds_path(request_rec *r)
{
    typedef proxy_worker *(*get_worker_fn)(apr_pool_t *, proxy_balancer *, proxy_server_conf *,
                                           const char *);
    get_worker_fn get_worker;
    module *proxy;
    proxy_server_conf *conf;
    proxy_worker *worker;

    if (r->filename == NULL || strncmp(r->filename, "proxy:", 6) != 0) {
        return NULL;
    }
    *(void **)&get_worker = dlsym(RTLD_DEFAULT, "ap_proxy_get_worker");
    proxy = dlsym(RTLD_DEFAULT, "proxy_module");
    if (get_worker == NULL || proxy == NULL) {
        return NULL;
    }
    conf = ap_get_module_config(r->server->module_config, proxy);
    if (conf == NULL) {
        return NULL;
    }
    worker = get_worker(r->pool, NULL, conf, r->filename + 6);
    if (worker == NULL || worker->s == NULL || worker->s->uds_path[0] == '\0') {
        return NULL;
    }
    return worker->s->uds_path;
}

/* The client's host name when HostnameLookups allows it, else its address:
 * what WSGIAccessScript's allow_access() gets (REMOTE_HOST is a macro). */
const char *wsgi_rs_remote_host(request_rec *r)
{
    const char *host = ap_get_remote_host(r->connection, r->per_dir_config, REMOTE_HOST, NULL);
    return host != NULL ? host : r->useragent_ip;
}

/* Whether any directive's arguments under d name word (a handler name), at
 * any depth of sections. */
static int config_names(const ap_directive_t *d, const char *word)
{
    for (; d != NULL; d = d->next) {
        if (d->args != NULL && ap_strstr_c(d->args, word) != NULL) {
            return 1;
        }
        if (config_names(d->first_child, word)) {
            return 1;
        }
    }
    return 0;
}

/* Whether the parsed main configuration (ap_conftree, kept by httpd for the
 * whole generation) names word anywhere in a directive's arguments. */
int wsgi_rs_config_names(const char *word)
{
    return config_names(ap_conftree, word);
}

/* A WebSocket tunnel (src/httpd/daemon_client/tunnel.rs), as mod_proxy_http
 * runs one after a backend's 101: the interim 101 goes out with
 * r->headers_out, then the connection belongs to the tunnel. The request's
 * filters become the connection's (the HTTP filters must not see the
 * tunnelled bytes, and the request's end then passes nothing through them),
 * mod_reqtimeout stops timing the connection (an idle socket is no slow
 * request), and the connection is not kept alive afterwards. Returns the
 * client socket's descriptor, for polling, and its timeout; -1 when it has
 * none. */
int wsgi_rs_tunnel_begin(request_rec *r, const char *status_line, apr_interval_time_t *timeout)
{
    conn_rec *c = r->connection;
    apr_socket_t *sock = ap_get_conn_socket(c);
    apr_os_sock_t fd = -1;

    r->status = HTTP_SWITCHING_PROTOCOLS;
    r->status_line = status_line;
    ap_send_interim_response(r, 1);
    r->output_filters = c->output_filters;
    r->proto_output_filters = c->output_filters;
    r->input_filters = c->input_filters;
    r->proto_input_filters = c->input_filters;
    ap_remove_input_filter_byhandle(c->input_filters, "reqtimeout");
    c->keepalive = AP_CONN_CLOSE;
    *timeout = -1;
    if (sock == NULL || apr_os_sock_get(&fd, sock) != APR_SUCCESS)
        return -1;
    apr_socket_timeout_get(sock, timeout);
    return fd;
}

/* Reads what the client sent, without waiting, through the connection's
 * input filters (so TLS is undone and bytes already buffered behind the
 * request come first). 1: *got bytes read; 0: nothing yet; -1: the client
 * closed the connection or reading it failed. */
int wsgi_rs_tunnel_read(request_rec *r, apr_bucket_brigade *bb, char *buf, apr_size_t len,
                        apr_size_t *got)
{
    apr_status_t rv;
    int eos = 0;

    *got = 0;
    rv = ap_get_brigade(r->connection->input_filters, bb, AP_MODE_READBYTES, APR_NONBLOCK_READ,
                        len);
    if (rv == APR_SUCCESS) {
        for (apr_bucket *b = APR_BRIGADE_FIRST(bb); b != APR_BRIGADE_SENTINEL(bb);
             b = APR_BUCKET_NEXT(b)) {
            if (APR_BUCKET_IS_EOS(b)) {
                eos = 1;
                apr_bucket_delete(b);
                break;
            }
        }
        *got = len;
        rv = apr_brigade_flatten(bb, buf, got);
    }
    apr_brigade_cleanup(bb);
    if (APR_STATUS_IS_EAGAIN(rv))
        return 0;
    if (rv != APR_SUCCESS)
        return -1;
    if (*got == 0)
        return eos ? -1 : 0;
    return 1;
}

/* Sends bytes to the client through the connection's output filters, at
 * once (flushed). */
apr_status_t wsgi_rs_tunnel_write(request_rec *r, apr_bucket_brigade *bb, const char *data,
                                  apr_size_t len)
{
    apr_status_t rv;
    apr_bucket_alloc_t *ba = r->connection->bucket_alloc;

    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_transient_create(data, len, ba));
    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_flush_create(ba));
    rv = ap_pass_brigade(r->connection->output_filters, bb);
    apr_brigade_cleanup(bb);
    return rv;
}

/* Whether an Apache child of an earlier generation (one a graceful restart
 * asked to finish and go) still runs: the scoreboard is httpd's record of
 * its children, shared with every process forked from the parent. */
int wsgi_rs_older_children_alive(void)
{
    int limit = 0, generation = 0, i;
    if (!ap_scoreboard_image
        || ap_mpm_query(AP_MPMQ_HARD_LIMIT_DAEMONS, &limit) != APR_SUCCESS
        || ap_mpm_query(AP_MPMQ_GENERATION, &generation) != APR_SUCCESS) {
        return 0;
    }
    for (i = 0; i < limit; i++) {
        process_score *ps = ap_get_scoreboard_process(i);
        if (ps && ps->pid > 0 && ps->generation != generation && kill(ps->pid, 0) == 0) {
            return 1;
        }
    }
    return 0;
}

/* Whether the MPM is restarting (rather than stopping): its signal handler
 * set restart_pending, which stays set while it reclaims its children. */
int wsgi_rs_restart_pending(void)
{
    ap_unixd_mpm_retained_data *retained = ap_unixd_mpm_get_retained_data();
    return retained ? retained->restart_pending : 0;
}
