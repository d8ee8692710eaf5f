"""Chinese first: the interface is zh-hans unless the person chose English with the language switch.

Django's LocaleMiddleware would otherwise follow the browser's Accept-Language, so a phone set to
English would greet a grid worker in English. The explicit choice (the language cookie set by
`set_language`) still wins.
"""

from django.conf import settings


class ChineseUnlessChosenMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if settings.LANGUAGE_COOKIE_NAME not in request.COOKIES:
            request.META.pop("HTTP_ACCEPT_LANGUAGE", None)
        return self.get_response(request)
