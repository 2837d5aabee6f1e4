"""A labelled set for question topics: our own paraphrases of questions of the shared Django FAQ
(../shared/data/qa/django_faq.jsonl, read at run time; its questions are not copied here). Each
FAQ entry's question and its paraphrases are one intent."""

PARAPHRASES = {
    "django-faq-03": [
        "Is Django reliable enough for production?",
        "Can I trust Django to be stable?",
        "how stable is django",
    ],
    "django-faq-04": [
        "Can Django handle lots of traffic?",
        "Will a Django site scale to millions of users?",
        "django scalability",
    ],
    "django-faq-06": [
        "What license is Django released under?",
        "Is Django open source, and under which licence?",
        "django license terms",
    ],
    "django-faq-13": [
        "Can I get the Django docs as a download for offline reading?",
        "Is there an offline copy of the documentation?",
        "download django docs offline",
    ],
    "django-faq-15": [
        "Where should a beginner start with Django?",
        "What is the best way to begin learning Django?",
        "getting started with django",
    ],
    "django-faq-17": [
        "Which Python versions does Django support?",
        "Does Django run on my version of Python?",
        "supported python versions for django",
    ],
    "django-faq-20": [
        "I get an ImportError about DJANGO_SETTINGS_MODULE, why?",
        "Error: settings module cannot be imported",
        "DJANGO_SETTINGS_MODULE import error",
    ],
    "django-faq-23": [
        "How do I upload images with an ImageField?",
        "How do file uploads work with FileField?",
        "using image fields in django models",
    ],
    "django-faq-24": [
        "How can every template get the same variable?",
        "Make a value available in all templates",
        "global template variable django",
    ],
    "django-faq-29": [
        "Where do I report a security vulnerability in Django?",
        "I found a security hole in Django, who do I tell?",
        "report django security issue",
    ],
    "django-faq-30": [
        "How do I print the SQL that the ORM executes?",
        "Show me the raw SQL queries Django runs",
        "view generated sql queries",
    ],
    "django-faq-31": [
        "Can Django work with my existing legacy database?",
        "Use Django on top of an already existing database",
        "django legacy database",
    ],
    "django-faq-32": [
        "How do I apply model changes to the database schema?",
        "I changed a model, how do I migrate the database?",
        "update database after changing models",
    ],
    "django-faq-33": [
        "Can a Django model have a composite primary key?",
        "Are multi-column primary keys supported?",
        "composite primary key django",
    ],
    "django-faq-34": [
        "Can I use MongoDB or another NoSQL database with Django?",
        "Is there NoSQL support in Django?",
        "django nosql",
    ],
    "django-faq-40": [
        "Admin CSS missing when deployed with mod_wsgi",
        "The admin has no styles in production under Apache",
        "admin static files not showing mod_wsgi",
    ],
    "django-faq-45": [
        "Which web browsers work with the Django admin?",
        "Is the admin compatible with my browser?",
        "supported browsers django admin",
    ],
    "django-faq-53": [
        "Why am I seeing UnicodeDecodeError?",
        "How do I fix a unicode decode error in Django?",
        "UnicodeDecodeError django",
    ],
}
