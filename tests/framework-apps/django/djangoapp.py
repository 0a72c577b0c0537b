"""A single-file Django project for the test API of ../README.md: this
module is the settings (DJANGO_SETTINGS_MODULE), the URLconf (ROOT_URLCONF)
and the views."""
from django.http import HttpResponse, HttpResponseRedirect, JsonResponse
from django.urls import path, reverse
from django.views.decorators.http import require_POST

# --- settings ---
DEBUG = False
SECRET_KEY = 'mod_wsgi_rs-tests-only-not-secret'
ALLOWED_HOSTS = ['127.0.0.1', 'localhost']
ROOT_URLCONF = __name__
INSTALLED_APPS = []
MIDDLEWARE = [__name__ + '.ProcessGroupMiddleware']
DATABASES = {}
USE_TZ = True


class ProcessGroupMiddleware:
    """Every response names the process group."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        response['X-Process-Group'] = request.META.get(
            'mod_wsgi.process_group', '')
        return response


# --- views ---
def index(request):
    body = 'framework=django\nitem=%s\nitem_abs=%s\n' % (
        reverse('item', args=[7]),
        request.build_absolute_uri(reverse('item', args=[7])))
    return HttpResponse(body, content_type='text/plain; charset=utf-8')


def item(request, item_id):
    response = JsonResponse({'id': item_id,
                             'self': reverse('item', args=[item_id])})
    response['X-Item-Id'] = str(item_id)
    return response


@require_POST
def greet(request):
    body = 'hello %s (%s)' % (request.POST['name'], request.POST['lang'])
    return HttpResponse(body, content_type='text/plain; charset=utf-8')


def old(request):
    return HttpResponseRedirect(reverse('item', args=[1]))


# --- URLconf ---
urlpatterns = [
    path('', index, name='index'),
    path('items/<int:item_id>', item, name='item'),
    path('greet', greet, name='greet'),
    path('old', old, name='old'),
]
