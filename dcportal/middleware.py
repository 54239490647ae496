"""Cache-Control: private, no-store on every response to an authenticated request.

A page or API answer meant for one user must never be kept by a shared proxy or
the browser's disk cache (a shared workstation, a back button after logout).
DRF's token authentication happens inside the view and sets request.user on the
Django request, so this runs on the way out and sees it.
"""


class PrivateCacheMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            response["Cache-Control"] = "private, no-store"
        return response
