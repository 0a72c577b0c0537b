"""The Flask test app: the API of ../README.md with Flask's routing, form
parsing and url_for (which builds URLs from SCRIPT_NAME)."""
from flask import Flask, jsonify, redirect, request, url_for

app = Flask(__name__)


@app.after_request
def process_group(response):
    response.headers['X-Process-Group'] = request.environ.get(
        'mod_wsgi.process_group', '')
    return response


@app.route('/')
def index():
    body = 'framework=flask\nitem=%s\nitem_abs=%s\n' % (
        url_for('item', item_id=7), url_for('item', item_id=7, _external=True))
    return body, 200, {'Content-Type': 'text/plain; charset=utf-8'}


@app.route('/items/<int:item_id>')
def item(item_id):
    response = jsonify({'id': item_id, 'self': url_for('item', item_id=item_id)})
    response.headers['X-Item-Id'] = str(item_id)
    return response


@app.route('/greet', methods=['POST'])
def greet():
    body = 'hello %s (%s)' % (request.form['name'], request.form['lang'])
    return body, 200, {'Content-Type': 'text/plain; charset=utf-8'}


@app.route('/old')
def old():
    return redirect(url_for('item', item_id=1))
